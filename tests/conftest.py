"""Shared fixtures: small catalogs of real photos, test plugins. Everything is real files on disk."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

# pytest-xdist starts its workers with COLUMNS=80, which the CLI's consoles would take as their fixed width when
# imported; without it (as in a plain pytest run) they read COLUMNS as each test sets it. Before anything imports them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)

from _s3 import MotoS3, moto_server, new_bucket, s3_environment
from _support import REAL_PHOTOS, real_photo


@pytest.fixture(scope="session")
def photo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder catalog of the real photos as JPEGs in two category folders (SKUs ``food/coffee`` ...)."""
    root = tmp_path_factory.mktemp("photo-catalog")
    for index, name in enumerate(REAL_PHOTOS):
        folder = root / ("food" if index % 2 == 0 else "misc")
        folder.mkdir(exist_ok=True)
        Image.fromarray(real_photo(name)).save(folder / f"{name}.jpg", quality=92)
    return root


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A --plugins-dir with test stages that fail on purpose, used to prove per-item isolation."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "faulty.py").write_text(
        textwrap.dedent(
            '''
            """Test stages: real behaviour, chosen to fail or slow down on purpose."""
            import os
            import time

            import numpy as np
            from pydantic import Field

            import imgx


            class FailOnParams(imgx.StageParams):
                sku_contains: str = Field(default="", description="Fail items whose SKU contains this.")
                stage_error: bool = Field(default=False, description="Raise a StageError naming the stage.")


            class FailOn(imgx.Stage):
                """Inverts the image, but raises for SKUs containing a marker (and raises for the whole batch
                first, so the executor has to isolate the bad item)."""

                name = "test.fail_on"
                Params = FailOnParams
                summary = "Invert; fail on chosen SKUs."
                batchable = True

                def __call__(self, batch):
                    if any(self.params.sku_contains and self.params.sku_contains in i.sku for i in batch):
                        if len(batch) > 1:
                            raise RuntimeError("batch contains a bad item")
                        if self.params.stage_error:
                            raise imgx.StageError(f"test.fail_on: item {batch[0].sku!r} refused")
                        raise ValueError(f"refusing {batch[0].sku}")
                    return [i.replace(image=np.ascontiguousarray(255 - i.image)) for i in batch]


            class SlowParams(imgx.StageParams):
                seconds: float = Field(default=0.05, description="Sleep per item.")


            class Slow(imgx.Stage):
                name = "test.slow"
                Params = SlowParams
                summary = "Sleep per item (kill/resume tests)."

                def process(self, item):
                    time.sleep(self.params.seconds)
                    return item


            class BadReturn(imgx.Stage):
                name = "test.bad_return"
                summary = "Returns the wrong type."

                def __call__(self, batch):
                    return ["not an item" for _ in batch]


            class BrokenInit(imgx.Stage):
                name = "test.broken_init"
                summary = "Cannot start (a missing model, say)."

                def __init__(self, params=None, context=None):
                    raise FileNotFoundError("weights not found: /nowhere/model.pth")


            @imgx.hookimpl
            def imgx_stages():
                return [FailOn, Slow, BadReturn, BrokenInit]
            '''
        )
    )
    return folder


@pytest.fixture(scope="session", autouse=True)
def _costs_of_the_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs in tests record their costs in a file of the session (``IMGX_COSTS``, inherited by the CLI processes the
    tests start), not in the developer's ``~/.cache/imgx/costs.json``: a 4-image test catalog's seconds and peak
    memory would otherwise be what ``imgx plan`` estimates the developer's own runs from."""
    before = os.environ.get("IMGX_COSTS")
    os.environ["IMGX_COSTS"] = str(tmp_path_factory.mktemp("costs") / "costs.json")
    yield
    if before is None:
        os.environ.pop("IMGX_COSTS", None)
    else:
        os.environ["IMGX_COSTS"] = before


@pytest.fixture(autouse=True)
def _no_autoload_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the default plugin environment, whatever the developer's shell has set."""
    for name in ("IMGX_DISABLE_PLUGIN_AUTOLOAD", "IMGX_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("COLUMNS", "200")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 for the whole session (skipped with a reason if moto is not installed)."""
    yield from moto_server()


@pytest.fixture
def s3_bucket(s3_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the loopback server, with ``AWS_ENDPOINT_URL`` and test credentials set for this test."""
    s3_environment(monkeypatch, s3_server)
    return new_bucket(s3_server)
