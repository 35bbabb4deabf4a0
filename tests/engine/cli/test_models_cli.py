"""``imgx models list | pull | path`` with a real third-party plugin (``--plugins-dir``) that registers its own model
source (a ``bucket://`` scheme backed by a folder) and its own models through the two model hooks."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
"""A shop's model plugin: weights live in an internal bucket, reached through a source plugin of its own."""
import os
import shutil
from pathlib import Path

import imgx
from imgx.errors import ModelError
from imgx.models import ModelSource, ModelSpec, WeightFile


class BucketSource(ModelSource):
    """bucket://NAME/KEY -> $SHOP_BUCKET_ROOT/NAME/KEY (a mounted object store)."""

    schemes = ("bucket",)

    def fetch(self, uri, dest):
        path = Path(os.environ["SHOP_BUCKET_ROOT"]) / uri.split("://", 1)[1]
        if not path.is_file():
            raise ModelError(f"got no object {{uri}} in the bucket; expected it under {{path.parent}}")
        shutil.copyfile(path, dest)


def build(paths):
    import torch

    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    net.load_state_dict(torch.load(paths["weights"], weights_only=True))
    return net


@imgx.hookimpl
def imgx_model_sources():
    return [BucketSource]


@imgx.hookimpl
def imgx_models():
    good = WeightFile("shop-net.pt", "{sha256}", ("bucket://weights/shop-net.pt",), {size})
    moved = WeightFile("old-net.pt", "{sha256}", ("bucket://weights/old-net.pt", "https://weights.invalid/old.pt"))
    return [
        ModelSpec(
            name="shop-net", files={{"weights": good}}, build=build, licence="Proprietary", summary="A shop net."
        ),
        ModelSpec(name="shop-moved", files={{"weights": moved}}, build=build, licence="Proprietary"),
    ]
'''


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The plugin folder, a bucket holding real conv weights, and a private IMGX_HOME."""
    import torch

    torch.manual_seed(3)
    bucket = tmp_path / "bucket"
    (bucket / "weights").mkdir(parents=True)
    weights = bucket / "weights" / "shop-net.pt"
    torch.save(torch.nn.Conv2d(3, 3, 3, padding=1).state_dict(), weights)
    data = weights.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "shop_models.py").write_text(textwrap.dedent(PLUGIN.format(sha256=sha256, size=len(data))))
    home = tmp_path / "imgx-home"
    monkeypatch.setenv("IMGX_HOME", str(home))
    monkeypatch.setenv("SHOP_BUCKET_ROOT", str(bucket))
    for name in ("IMGX_MODELS_PATH", "IMGX_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return {"plugins": plugins, "sha256": sha256, "size": len(data), "data": data, "cache": home / "models"}


def test_list_shows_files_size_licence_source_and_cache_state(imgx, shop) -> None:
    result = imgx("models", "list", "--plugins-dir", shop["plugins"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    kb = f"{shop['size'] / 1000:.1f} kB"
    cells = ["shop-net.pt", kb, "Proprietary", "bucket://weights/shop-net.pt", "no"]
    assert re.search(r"│ shop-net\s*│ .*│ " + r"\s*│ ".join(map(re.escape, cells)) + r"\s*│", text)
    assert re.search(
        r"│ shop-moved\s*│.*│ old-net.pt\s*│ \?\s*│ Proprietary\s*│ bucket://weights/old-net.pt\s*│ no", text
    )
    assert f"cache: {shop['cache']} (set IMGX_HOME to move it)" in text
    assert imgx("models", "pull", "shop-net", "--plugins-dir", shop["plugins"]).exit_code == 0
    assert re.search(r"│ shop-net\s*│.*│ yes\s*│", imgx("models", "list", "--plugins-dir", shop["plugins"]).stdout)
    (shop["cache"] / "shop-net" / "shop-net.pt").write_bytes(b"edited by hand")
    listed = imgx("models", "list", "--plugins-dir", shop["plugins"]).stdout
    assert re.search(r"│ shop-net\s*│.*│ 14 B\s*│.*│ wrong hash: shop-net.pt\s*│", listed)


def test_list_json_has_every_file_with_its_hash_path_and_sources(imgx, shop) -> None:
    result = imgx("models", "list", "--json", "--plugins-dir", shop["plugins"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing["cache"] == str(shop["cache"])
    models = {m["name"]: m for m in listing["models"]}
    assert {"shop-net", "shop-moved"} <= set(models)
    net = models["shop-net"]
    assert (net["licence"], net["summary"], net["size"], net["cached"]) == (
        "Proprietary",
        "A shop net.",
        shop["size"],
        "no",
    )
    assert net["files"] == [
        {
            "role": "weights",
            "filename": "shop-net.pt",
            "sha256": shop["sha256"],
            "size": shop["size"],
            "state": "missing",
            "path": str(shop["cache"] / "shop-net" / "shop-net.pt"),
            "sources": ["bucket://weights/shop-net.pt"],
        }
    ]


def test_pull_fetches_through_the_plugins_own_source(imgx, shop) -> None:
    result = imgx("models", "pull", "shop-net", "--plugins-dir", shop["plugins"])
    assert result.exit_code == 0, result.output
    target = shop["cache"] / "shop-net" / "shop-net.pt"
    kb = f"{shop['size'] / 1000:.1f} kB"
    assert result.stdout == f"shop-net: shop-net.pt ({kb}) fetched from bucket://weights/shop-net.pt -> {target}\n"
    assert target.read_bytes() == shop["data"]
    again = imgx("models", "pull", "shop-net", "--plugins-dir", shop["plugins"])
    assert again.stdout == f"shop-net: shop-net.pt ({kb}) already cached -> {target}\n"


def test_pull_all_reports_each_model_and_exits_1_when_one_fails(imgx, shop) -> None:
    result = imgx("models", "pull", "--plugins-dir", shop["plugins"])
    assert result.exit_code == 1
    assert "shop-net: shop-net.pt" in result.stdout and "fetched from bucket://weights/shop-net.pt" in result.stdout
    errors = result.stderr.splitlines()
    moved = [line for line in errors if "shop-moved" in line]
    assert len(moved) == 2, result.stderr  # one line for the model, one in the summary
    assert moved[0].startswith("error: got no verified copy of old-net.pt of model 'shop-moved' (")
    assert (
        "bucket://weights/old-net.pt: got no object bucket://weights/old-net.pt in the bucket; expected it under"
        in (moved[0])
    )
    assert "https://weights.invalid/old.pt: cannot reach the host:" in moved[0]
    assert (
        "To fix: run `imgx models pull shop-moved` where its source is reachable, or place the file by hand at "
        in (moved[0])
    )
    assert str(shop["cache"] / "shop-moved" / "old-net.pt") in moved[0]
    assert re.search(r"error: 1 of \d+ models failed: shop-moved$", result.stderr.strip())


def test_path_tells_where_to_place_a_file_by_hand_and_it_is_then_used(imgx, shop) -> None:
    result = imgx("models", "path", "shop-moved", "--plugins-dir", shop["plugins"])
    assert result.exit_code == 0, result.output
    target = shop["cache"] / "shop-moved" / "old-net.pt"
    assert result.stdout.startswith(f"{target}  sha256 {shop['sha256']}  (missing; from bucket://weights/old-net.pt")
    target.parent.mkdir(parents=True)
    target.write_bytes(shop["data"])  # an air-gapped machine: copied in by hand
    pulled = imgx("models", "pull", "shop-moved", "--plugins-dir", shop["plugins"])
    assert pulled.exit_code == 0 and "already cached" in pulled.stdout


def test_an_unknown_model_exits_2_with_the_close_names(imgx, shop) -> None:
    result = imgx("models", "pull", "shop-nett", "--plugins-dir", shop["plugins"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: got unknown model 'shop-nett'. Did you mean 'shop-net'")
    assert result.stdout == ""
