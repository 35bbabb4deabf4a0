"""Runs whose catalog and outputs are in object storage: an S3-compatible server (moto) on loopback, ``imgx`` run as
a catalog team runs it (the CLI in a subprocess, the standard AWS variables pointing at the server).

What is checked: every output lands in the bucket whole and decodes; nothing is written to a local path; ``--resume``
skips everything done; ``imgx report`` and ``imgx sheet`` read and write the bucket; a bucket that does not exist or
refused credentials give one line before any image; a second run into a prefix that a run holds is refused; the
server stopped for a few seconds mid-run loses nothing and duplicates nothing."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from _s3 import MotoS3, check_outputs, keys, s3_recipe, subprocess_env, upload_catalog

pytestmark = pytest.mark.slow


def run_imgx(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgx", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_a_run_reads_and_writes_only_the_bucket_and_resumes_reports_and_sheets(
    s3_bucket: str, s3_server: MotoS3, photo_catalog: Path, tmp_path: Path
) -> None:
    skus = upload_catalog(s3_server, s3_bucket, photo_catalog, "catalog")
    recipe_dir, cwd = tmp_path / "recipe", tmp_path / "cwd"
    recipe_dir.mkdir()
    cwd.mkdir()
    recipe = recipe_dir / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(s3_recipe(s3_bucket, workers=2)))
    env = subprocess_env(s3_server)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    result = run_imgx(["run", str(recipe), "--no-progress"], env, cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    check_outputs(s3_server, s3_bucket, skus)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "a run wrote to a local path"
    state = keys(s3_server, s3_bucket, "out/_imgx/")
    # zero-byte keys ending in "/" are the folder markers pyarrow keeps after a delete; nothing else may be left
    assert [k for k in state if not k.startswith("out/_imgx/ledger/") and not k.endswith("/")] == [], state
    from imgx.ledger import read_ledger

    rows = read_ledger(f"s3://{s3_bucket}/out").to_pylist()
    assert sorted((r["sku"], r["output"]) for r in rows if r["status"] == "ok") == sorted(
        (sku, output) for sku in skus for output in ("enhanced", "square")
    )

    resumed = run_imgx(["run", str(recipe), "--no-progress", "--resume"], env, cwd)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    skipped = re.search(r"skipped \(done before\)\s*│\s*(\d+)\s*│\s*(\d+)", resumed.stderr)
    assert skipped and skipped.groups() == (str(len(skus)), str(2 * len(skus))), resumed.stderr
    assert len(read_ledger(f"s3://{s3_bucket}/out")) == len(rows), "--resume redid outputs that were done"

    report = run_imgx(["report", f"s3://{s3_bucket}/out"], env, cwd)
    assert report.returncode == 0, report.stdout + report.stderr
    assert f"{len(skus)} items, {2 * len(skus)} outputs" in report.stdout, report.stdout
    sheet = run_imgx(["sheet", f"s3://{s3_bucket}/out", "--limit", "3"], env, cwd)
    assert sheet.returncode == 0, sheet.stdout + sheet.stderr
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="out/contact-sheet.jpg")["Body"].read()
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG" and image.height > 3 * 48
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_missing_bucket_and_refused_credentials_are_one_line_before_any_image(
    s3_bucket: str, s3_server: MotoS3, photo_catalog: Path, tmp_path: Path
) -> None:
    upload_catalog(s3_server, s3_bucket, photo_catalog, "catalog")
    recipe = tmp_path / "recipe.yaml"
    document = s3_recipe(s3_bucket)
    document["output"]["dir"] = "s3://imgx-no-such-bucket-3f9a/out"
    recipe.write_text(yaml.safe_dump(document))
    result = run_imgx(["run", str(recipe), "--no-progress"], subprocess_env(s3_server), tmp_path)
    assert result.returncode != 0
    assert "got output.dir 's3://imgx-no-such-bucket-3f9a/out': the bucket does not exist" in result.stderr
    assert "Traceback" not in result.stderr

    recipe.write_text(yaml.safe_dump(s3_recipe(s3_bucket)))
    s3_server.set_auth(True)
    try:
        result = run_imgx(["run", str(recipe), "--no-progress"], subprocess_env(s3_server), tmp_path)
    finally:
        s3_server.set_auth(False)
    assert result.returncode != 0
    assert f"s3://{s3_bucket}/" in result.stderr and "AWS_ACCESS_KEY_ID" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert keys(s3_server, s3_bucket, "out/") == [], "nothing may be written before the checks pass"


def test_a_second_run_into_a_held_prefix_is_refused_naming_the_first(
    s3_bucket: str, s3_server: MotoS3, photo_catalog: Path, tmp_path: Path
) -> None:
    from imgx.io import fs

    upload_catalog(s3_server, s3_bucket, photo_catalog, "catalog")
    marker = fs.acquire_run_marker(f"s3://{s3_bucket}/out", "20261204T000000-abcdef")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(s3_recipe(s3_bucket)))
    result = run_imgx(["run", str(recipe), "--no-progress"], subprocess_env(s3_server), tmp_path)
    assert result.returncode != 0
    assert "run 20261204T000000-abcdef" in result.stderr and "is writing into it" in result.stderr, result.stderr
    assert [k for k in keys(s3_server, s3_bucket, "out/") if k.endswith(".png")] == []
    fs.release_run_marker(marker, "20261204T000000-abcdef")
    result = run_imgx(["run", str(recipe), "--no-progress"], subprocess_env(s3_server), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not fs.exists(f"s3://{s3_bucket}/out/_imgx/run.lock"), "a finished run releases its marker"


def test_the_server_down_for_seconds_mid_run_loses_and_duplicates_nothing(
    s3_bucket: str, s3_server: MotoS3, photo_catalog: Path, tmp_path: Path, plugin_dir: Path
) -> None:
    skus = upload_catalog(s3_server, s3_bucket, photo_catalog, "catalog", copies=3)  # 24 items
    document = s3_recipe(s3_bucket, workers=2, batch_size=2)
    stages = document["stages"]
    stages.insert(1, {"id": "slow", "uses": "test.slow", "needs": ["enhanced"], "with": {"seconds": 0.15}})
    stages[-1]["needs"] = ["slow"]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(document))
    command = [sys.executable, "-m", "imgx", "run", str(recipe), "--no-progress", "--plugins-dir", str(plugin_dir)]
    env = subprocess_env(s3_server)
    run = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline:
        if sum(k.endswith(".png") for k in keys(s3_server, s3_bucket, "out/")) >= 6:
            break
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before the outage: make it slower"
    s3_server.stop()
    time.sleep(4)
    s3_server.start()
    output, _ = run.communicate(timeout=600)
    text = output.decode(errors="replace")
    assert run.returncode in (0, 1), text[-3000:]  # 1: items whose retries ran out failed, alone
    resumed = subprocess.run([*command, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    from imgx.ledger import read_ledger

    check_outputs(s3_server, s3_bucket, skus)
    rows = read_ledger(f"s3://{s3_bucket}/out").to_pylist()
    ok = [(r["sku"], r["output"]) for r in rows if r["status"] == "ok"]
    assert set(ok) == {(sku, output) for sku in skus for output in ("enhanced", "square")}, "an output was lost"
    assert len(ok) == len(set(ok)), "a ledger row was written twice"
    leftovers = [k for k in keys(s3_server, s3_bucket) if ".imgx-" in k or "/_imgx/tmp/" in k]
    assert leftovers == [], f"partial or temp objects left: {leftovers}"
