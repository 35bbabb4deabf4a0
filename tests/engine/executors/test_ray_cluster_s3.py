"""A two-node Ray cluster over a catalog in object storage: the head and a second node (``ray start`` processes with
the standard AWS variables, as a cluster's nodes carry credentials), an S3-compatible server on loopback, and
``imgx run --address`` in a subprocess. Every output lands in the bucket, both nodes did work (the ledger's
``worker`` column), and nothing is written to a local path: no shared file system is needed, not even for the
``--plugins-dir`` folder (shipped with the run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from _ray_cluster import two_node_cluster
from _s3 import MotoS3, check_outputs, keys, s3_recipe, subprocess_env, upload_catalog

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3_cluster(s3_server: MotoS3) -> Iterator[tuple[str, dict[str, str]]]:
    with two_node_cluster(subprocess_env(s3_server)) as started:
        yield started


def test_catalog_and_outputs_in_s3_on_two_nodes_with_no_shared_file_system(
    s3_bucket: str, s3_server: MotoS3, s3_cluster, photo_catalog: Path, plugin_dir: Path, tmp_path: Path
) -> None:
    address, env = s3_cluster
    skus = upload_catalog(s3_server, s3_bucket, photo_catalog, "catalog", copies=2)  # 16 items
    document = s3_recipe(s3_bucket, batch_size=2)
    stages = document["stages"]
    stages.insert(1, {"id": "slow", "uses": "test.slow", "needs": ["enhanced"], "with": {"seconds": 0.2}})
    stages[-1]["needs"] = ["slow"]
    document["execution"].update(
        executor="ray", ray={"address": address, "blocks": 8, "runtime_env": {"ship_code": False}}
    )
    recipe_dir, cwd = tmp_path / "recipe", tmp_path / "cwd"
    recipe_dir.mkdir()
    cwd.mkdir()
    recipe = recipe_dir / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(document))
    # The plugin folder exists only where the driver runs, named relative to its working directory: the Ray workers
    # run elsewhere, so they can load it only from the copy the run ships to them.
    shutil.copytree(plugin_dir, cwd / "my-plugins")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    command = [sys.executable, "-m", "imgx", "run", str(recipe), "--no-progress", "--plugins-dir", "my-plugins"]
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    check_outputs(s3_server, s3_bucket, skus)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "__pycache__" not in p.parts)
    assert after == before, "the run wrote to a local path"
    from imgx.ledger import read_ledger

    rows = read_ledger(f"s3://{s3_bucket}/out").to_pylist()
    ok = [(r["sku"], r["output"]) for r in rows if r["status"] == "ok"]
    assert sorted(ok) == sorted((sku, output) for sku in skus for output in ("enhanced", "square"))
    nodes = {row["worker"].split("-")[1] for row in rows}  # ray-<node id prefix>-<pid>
    assert len(nodes) == 2, f"expected work on both nodes; ledger workers: {sorted({r['worker'] for r in rows})}"
    state = keys(s3_server, s3_bucket, "out/_imgx/")
    left = [k for k in state if not k.startswith("out/_imgx/ledger/") and not k.endswith("/")]  # "/": folder markers
    assert left == [], f"run state left behind (run marker, chunk markers, temp keys): {left}"
