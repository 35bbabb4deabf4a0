"""``imgx audit``: the installed console script over the real-photo catalog with one known violation per file.

Every violation is found with its rule id, the compliant files pass, nothing is written next to the images, bad
input is a clear error with exit 2 and an undecodable image is one failed item while the audit goes on.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _s3 import keys, new_bucket, subprocess_env
from _support import load_rgba_pack
from imgx_compliance.audit import audit_recipe, item_report

from .test_catalog import EXPECTED

IMGX = shutil.which("imgx", path=str(Path(sys.executable).parent)) or shutil.which("imgx")


def audit(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if IMGX is None:
        pytest.fail("the imgx console script is not installed (pip install -e .)")
    env = {**(env or os.environ), "COLUMNS": "200"}
    return subprocess.run(
        [IMGX, "audit", *map(str, args), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def audited(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The catalog audited once (amazon-main + google-merchant, the files' own alpha as the mask), plus one file that
    is not an image; the catalog's files before and after are compared in a test."""
    folder = tmp_path_factory.mktemp("audited")
    copy = shutil.copytree(catalog, folder / "catalog")
    (copy / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    before = snapshot(copy)
    done = audit(
        copy, "-r", "amazon-main", "-r", "google-merchant", "--mask", "alpha", "--json", folder / "a.json",
        "--csv", folder / "a.csv", "--html", folder / "a.html", "--workers", "2",
    )  # fmt: skip
    assert snapshot(copy) == before, "the audit wrote or touched something next to the images"
    return done, folder


def test_every_known_violation_is_found_and_compliant_files_pass(audited) -> None:
    done, folder = audited
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((folder / "a.json").read_text())
    items = {Path(item["source"]).name: item for item in report["items"]}
    assert set(items) == set(EXPECTED) | {"broken.jpg"}
    for name, rule in EXPECTED.items():
        item = items[name]
        assert [v["rule"] for v in item["violations"]] == ([rule] if rule else []), item
        assert item["passed"] is (rule is None)
        for violation in item["violations"]:
            assert violation["value"] is not None and violation["bound"] and violation["message"], violation
    fill = items["fill-50.png"]["violations"][0]
    assert fill["value"] == pytest.approx(0.5, abs=0.01) and fill["bound"] == ">= 0.85"
    assert {(r["pack"], r["rule"]) for r in report["rules"]} >= {
        ("amazon-main", "product.fill"),
        ("google-merchant", "file.max_bytes"),
    }
    summary = report["summary"]
    assert summary["images"] == 13 and summary["passed"] == 3 and summary["unreadable"] == 1
    assert summary["violations"] == {rule: 1 for rule in EXPECTED.values() if rule}
    assert "3 of 13 image(s) pass; 10 would be rejected" in done.stdout
    assert "product.fill" in done.stdout  # the summary table names the rules


def test_an_undecodable_image_is_one_failed_item(audited) -> None:
    _, folder = audited
    items = {Path(i["source"]).name: i for i in json.loads((folder / "a.json").read_text())["items"]}
    broken = items["broken.jpg"]
    assert broken["passed"] is False and broken["error"].startswith("decode:") and broken["violations"] == []


def test_the_csv_has_one_row_per_image(audited) -> None:
    _, folder = audited
    with (folder / "a.csv").open(newline="") as handle:
        rows = {Path(r["source"]).name: r for r in csv.DictReader(handle)}
    assert len(rows) == 13
    assert rows["two-products.png"]["violations"] == "product.count" and rows["two-products.png"]["passed"] == "false"
    assert rows["ok-coffee.png"]["passed"] == "true" and rows["ok-coffee.png"]["violations"] == ""
    assert "needs" in rows["small-600.png"]["details"]


def test_the_review_page_leads_with_the_rejected_images(audited) -> None:
    _, folder = audited
    page = (folder / "a.html").read_text()
    assert "<script" in page and "http://" not in page and "https://" not in page  # self-contained
    assert page.index("two-products") < page.index("ok-coffee")  # failed and flagged rows come first
    for rule in ("product.count", "background.white", "file.max_bytes"):
        assert rule in page


def test_a_compliant_manifest_exits_0(catalog: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "ok.csv"
    names = [name for name, rule in EXPECTED.items() if rule is None]
    manifest.write_text("sku,image\n" + "".join(f"{Path(n).stem},{catalog / n}\n" for n in names))
    done = audit(manifest, "-r", "amazon-main", "--mask", "alpha", "--json", tmp_path / "ok.json")
    assert done.returncode == 0, done.stdout + done.stderr
    items = json.loads((tmp_path / "ok.json").read_text())["items"]
    assert sorted(i["sku"] for i in items) == sorted(Path(n).stem for n in names)
    assert all(i["passed"] and not i["violations"] for i in items)


def test_segment_product_gives_the_mask_when_the_file_has_none(tmp_path: Path) -> None:
    """A JPEG (no alpha) of matplotlib's gift pack on white at a known fill: the audit cuts it out with
    segment.product (U2-Netp) and measures product.fill near the truth from the sample's own alpha."""
    rgb, alpha = load_rgba_pack()
    side = 1200
    scale = round(side * 0.6) / rgb.shape[1]
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    piece = Image.fromarray(np.dstack([rgb, alpha])).resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(piece, ((side - size[0]) // 2, (side - size[1]) // 2), piece)
    (tmp_path / "catalog").mkdir()
    canvas.save(tmp_path / "catalog" / "gift.jpg", quality=95)
    mask = np.zeros((side, side), bool)
    mask[(side - size[1]) // 2 :, (side - size[0]) // 2 :][: size[1], : size[0]] = np.asarray(piece)[..., 3] >= 128
    rows, cols = np.nonzero(mask)
    truth = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) / side
    done = audit(tmp_path / "catalog", "-r", "amazon-main", "--json", tmp_path / "a.json")
    assert done.returncode == 1, done.stdout + done.stderr
    (item,) = json.loads((tmp_path / "a.json").read_text())["items"]
    (fill,) = [v for v in item["violations"] if v["rule"] == "product.fill"]
    assert fill["value"] == pytest.approx(truth, abs=0.03), (fill, truth)


def test_bad_usage_exits_2_with_the_reason(catalog: Path, tmp_path: Path) -> None:
    unknown = audit(catalog, "-r", "amazon-mian")
    assert unknown.returncode == 2 and "amazon-mian" in unknown.stderr and "amazon-main" in unknown.stderr
    pack = tmp_path / "shop.yaml"
    pack.write_text("name: shop\nextends: amazon-main\nrules:\n  product.fil: {min: 0.8}\n")
    malformed = audit(catalog, "-r", pack)
    assert malformed.returncode == 2 and "product.fil" in malformed.stderr and "shop.yaml" in malformed.stderr
    missing = audit(tmp_path / "no-such-folder")
    assert missing.returncode == 2 and "no-such-folder" in missing.stderr


def test_the_recipe_cuts_out_only_when_a_rule_needs_the_mask(tmp_path: Path) -> None:
    files_only = audit_recipe(str(tmp_path), ["shopify"], tmp_path)
    assert [s["uses"] for s in files_only["stages"]] == ["check.marketplace"]
    assert files_only["output"]["write"] is False
    amazon = audit_recipe(str(tmp_path), ["amazon-main"], tmp_path)
    assert [s["uses"] for s in amazon["stages"]] == ["segment.product", "check.marketplace"]
    assert [s["uses"] for s in audit_recipe(str(tmp_path), ["amazon-main"], tmp_path, mask="alpha")["stages"]] == [
        "check.marketplace"
    ]


def test_item_report_reads_flags_and_metrics() -> None:
    row = {
        "sku": "a",
        "source": "a.png",
        "status": "ok",
        "stage": "",
        "error": "",
        "flags": "mask:low_confidence,check:product.fill,check:warning:aspect",
        "metrics": json.dumps(
            {
                "check.product.fill": 0.5,
                "check.product.fill.bound": ">= 0.85",
                "check.product.fill.message": "product spans 50% of the frame; needs >= 0.85",
                "check.aspect": 1.2,
                "check.aspect.bound": "1.00 +- 0.01",
                "check.aspect.message": "aspect 1.2",
            }
        ),
    }
    item = item_report(row)
    assert item["passed"] is False
    assert item["violations"] == [
        {
            "rule": "product.fill",
            "value": 0.5,
            "bound": ">= 0.85",
            "message": "product spans 50% of the frame; needs >= 0.85",
        }
    ]
    assert [w["rule"] for w in item["warnings"]] == ["aspect"]
    warned = item_report({**row, "flags": "check:warning:aspect"})
    assert warned["passed"] is True and warned["violations"] == []


def test_a_catalog_in_object_storage_is_audited_read_only(catalog: Path, s3_server, tmp_path: Path) -> None:
    """The catalog under a prefix of a bucket on moto's S3 server (loopback): every file audited with its rule id,
    and the bucket holds exactly the keys it held before (nothing written next to the images)."""
    bucket = new_bucket(s3_server)
    client = s3_server.client()
    names = ["ok-coffee.png", "fill-50.png", "border-20.png"]
    for name in names:
        client.put_object(Bucket=bucket, Key=f"shop/{name}", Body=(catalog / name).read_bytes())
    before = keys(s3_server, bucket)
    done = audit(
        f"s3://{bucket}/shop", "-r", "amazon-main", "--mask", "alpha", "--json", tmp_path / "a.json",
        env=subprocess_env(s3_server),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    items = {i["sku"]: i for i in json.loads((tmp_path / "a.json").read_text())["items"]}
    assert {sku: [v["rule"] for v in item["violations"]] for sku, item in items.items()} == {
        "ok-coffee": [],
        "fill-50": ["product.fill"],
        "border-20": ["border"],
    }
    assert items["fill-50"]["source"] == f"s3://{bucket}/shop/fill-50.png"
    assert keys(s3_server, bucket) == before
