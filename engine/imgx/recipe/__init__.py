"""Recipes: YAML parsed once into typed models, with located errors."""

from .loader import LoadedRecipe, apply_override, load_recipe, parse_recipe
from .model import (
    EncodeSettings,
    ExecutionSpec,
    InputSpec,
    OutputOverride,
    OutputSpec,
    Recipe,
    StageSpec,
    parse_color,
    parse_failure_budget,
)

__all__ = [
    "EncodeSettings",
    "ExecutionSpec",
    "InputSpec",
    "LoadedRecipe",
    "OutputOverride",
    "OutputSpec",
    "Recipe",
    "StageSpec",
    "apply_override",
    "load_recipe",
    "parse_color",
    "parse_failure_budget",
    "parse_recipe",
]
