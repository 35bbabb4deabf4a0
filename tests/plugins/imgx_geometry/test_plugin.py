"""The geometry plugin is found through the ``imgx`` entry points, like a third-party one."""

from __future__ import annotations

from imgx.registry import load_registry
from imgx_geometry import STAGES, Fit, Resize


def test_discovered_through_entry_points() -> None:
    registry = load_registry()
    assert not [f for f in registry.failures if "geometry" in f.plugin]
    assert registry.get_stage("geometry.fit") is Fit
    assert registry.get_stage("geometry.resize") is Resize
    for cls in STAGES:
        assert registry.stage_plugin(cls.name).startswith("geometry")
        described = cls.describe()
        assert described["summary"] and all(p["description"] for p in described["params"])
