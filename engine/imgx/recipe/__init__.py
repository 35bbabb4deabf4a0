"""Recipes: YAML parsed once into typed models, with located errors."""

from .loader import LoadedRecipe, apply_override, load_recipe, parse_recipe
from .model import ExecutionSpec, InputSpec, OutputSpec, Recipe, StageSpec, parse_color, parse_failure_budget

__all__ = [
    "ExecutionSpec",
    "InputSpec",
    "LoadedRecipe",
    "OutputSpec",
    "Recipe",
    "StageSpec",
    "apply_override",
    "load_recipe",
    "parse_color",
    "parse_failure_budget",
    "parse_recipe",
]
