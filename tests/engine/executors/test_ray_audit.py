"""``imgx audit`` on the Ray executor (a real local Ray joined by address): the same report as the local executor,
since the audit is a run like any other."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

IMGX = shutil.which("imgx", path=str(Path(sys.executable).parent)) or shutil.which("imgx")


def audit(catalog: Path, report: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    assert IMGX is not None, "the imgx console script is not installed (pip install -e .)"
    command = [IMGX, "audit", str(catalog), "-r", "shopify", "-r", "amazon-main", "--mask", "alpha"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run(
        [*command, "--json", str(report), "--no-progress", *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_the_ray_executor_gives_the_local_report(photo_catalog: Path, tmp_path: Path, ray_address: str) -> None:
    local = audit(photo_catalog, tmp_path / "local.json")
    on_ray = audit(photo_catalog, tmp_path / "ray.json", "--executor", "ray", "--address", ray_address)
    assert local.returncode == on_ray.returncode == 1, local.stderr + on_ray.stderr
    by_sku = [
        {i["sku"]: (i["passed"], i["violations"], i["warnings"]) for i in json.loads(p.read_text())["items"]}
        for p in (tmp_path / "local.json", tmp_path / "ray.json")
    ]
    assert by_sku[0] == by_sku[1] and len(by_sku[0]) == len(list(photo_catalog.rglob("*.jpg")))
    assert any(w[2] for w in by_sku[0].values())  # shopify's square warning on the non-square photos
