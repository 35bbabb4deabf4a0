"""The plugin host: entry points, --plugins-dir, IMGX_PLUGINS, the autoload switch, and failing plugins named and
isolated. Every plugin here is a real module on disk, found the way a user's would be."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from imgx import PluginError, hookspecs
from imgx.registry import CORE_PLUGINS, PluginConfig, load_registry

TESTS = Path(__file__).resolve().parents[1]


def write_plugin(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
    import imgx

    class Tint(imgx.Stage):
        name = "shop.tint"
        summary = "A third-party stage."

        def process(self, item):
            return item

    @imgx.hookimpl
    def imgx_stages():
        return [Tint]
"""


def test_first_party_stages_arrive_through_the_entry_point_group() -> None:
    registry = load_registry()
    assert registry.failures == []
    for name in (
        "color.enhance",
        "color.white_balance",
        "color.contrast",
        "color.saturation",
        "color.gamma",
        "color.sharpen",
        "color.denoise",
        "geometry.fit",
        "geometry.resize",
    ):
        assert name in registry.stages
    assert registry.stage_plugin("color.enhance").startswith("color (imgx")
    assert registry.stage_plugin("geometry.fit").startswith("geometry (imgx")
    assert "local" in registry.executors and registry.reader_for_suffix(".CSV") is not None


def test_disabling_autoload_drops_entry_points_and_imgx_plugins_brings_one_back(monkeypatch) -> None:
    monkeypatch.setenv("IMGX_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_registry()
    assert not any(name.startswith(("color.", "geometry.")) for name in registry.stages)
    assert "local" in registry.executors  # the core is not a plugin you can switch off
    monkeypatch.setenv("IMGX_PLUGINS", "imgx_geometry")
    registry = load_registry()
    assert "geometry.fit" in registry.stages and "color.enhance" not in registry.stages
    assert "color.gamma" in load_registry(PluginConfig(modules=("imgx_color",))).stages


def test_plugins_dir_loads_modules_and_packages(tmp_path: Path) -> None:
    write_plugin(tmp_path / "dir", "tint", GOOD)
    package = tmp_path / "dir" / "shop_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(GOOD).replace("shop.tint", "shop.pkg"))
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "dir"),)))
    assert {"shop.tint", "shop.pkg"} <= set(registry.stages) and registry.failures == []
    assert registry.stage_plugin("shop.tint").endswith("tint.py")


def test_a_shipped_plugins_dir_loads_where_the_folder_does_not_exist(tmp_path: Path) -> None:
    """What a Ray run sends to its workers: the folder packed into the config. In a fresh interpreter, with the folder
    gone, the modules and packages load from the packed copy under the names the driver gave them, so a stage class
    pickled by the driver unpickles there."""
    import pickle
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "dir"
    write_plugin(folder, "tint", GOOD)
    (folder / "shop_pkg").mkdir()
    (folder / "shop_pkg" / "__init__.py").write_text(textwrap.dedent(GOOD).replace("shop.tint", "shop.pkg"))
    (folder / "shop_pkg" / "data.txt").write_text("kept: packages carry their files")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    config = PluginConfig(plugins_dirs=(str(folder),)).with_shipped()
    driver = load_registry(PluginConfig(plugins_dirs=(str(folder),)))
    stage_bytes = pickle.dumps((driver.stages["shop.tint"].obj, driver.stages["shop.pkg"].obj))
    (shipped,) = config.shipped
    import io
    import zipfile

    names = sorted(zipfile.ZipFile(io.BytesIO(shipped.archive)).namelist())
    assert names == ["shop_pkg/__init__.py", "shop_pkg/data.txt", "tint.py"]
    shutil.rmtree(folder)
    (tmp_path / "config.pickle").write_bytes(pickle.dumps(config))
    (tmp_path / "stages.pickle").write_bytes(stage_bytes)
    script = textwrap.dedent(
        """
        import pathlib, pickle, sys
        from imgx.registry import load_registry
        here = pathlib.Path(sys.argv[1])
        registry = load_registry(pickle.loads((here / "config.pickle").read_bytes()))
        assert registry.failures == [], registry.failures
        tint, pkg = pickle.loads((here / "stages.pickle").read_bytes())
        assert tint is registry.stages["shop.tint"].obj and pkg is registry.stages["shop.pkg"].obj
        print((pathlib.Path(sys.modules[pkg.__module__].__file__).parent / "data.txt").read_text())
        """
    )
    worker = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=tmp_path.parent, timeout=120
    )
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.strip() == "kept: packages carry their files"


def test_a_plugins_dir_too_big_to_ship_is_refused_with_what_to_do(tmp_path: Path) -> None:
    import os

    package = tmp_path / "dir" / "shop_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(GOOD))
    (package / "weights.bin").write_bytes(os.urandom(17 << 20))  # random bytes: zip cannot shrink them
    with pytest.raises(PluginError, match=r"over the 16 MiB a run ships to its workers; install it on the nodes as"):
        PluginConfig(plugins_dirs=(str(tmp_path / "dir"),)).with_shipped()


def test_a_missing_plugins_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="expected an existing folder"):
        load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "nope"),)))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("import imgx\nraise ImportError('needs libfoo')\n", "ImportError: needs libfoo"),
        ("import imgx\n\n@imgx.hookimpl\ndef imgx_stage():\n    return []\n", "imgx_stage"),
        ("import imgx\n\n@imgx.hookimpl\ndef imgx_stages():\n    raise RuntimeError('boom')\n", "raised RuntimeError"),
        ("import imgx\n\n@imgx.hookimpl\ndef imgx_stages():\n    return [dict]\n", "expected a subclass of imgx.Stage"),
        (
            "import imgx\n\nclass S(imgx.Stage):\n    name = 'nodot'\n\n@imgx.hookimpl\ndef imgx_stages():\n"
            "    return [S]\n",
            "expected 'group.verb'",
        ),
        (
            "import imgx\n\n@imgx.hookimpl\ndef imgx_executors():\n    return [object]\n",
            "expected a subclass of imgx.executors.Executor",
        ),
        ("import imgx\n\n@imgx.hookimpl\ndef imgx_catalog_readers():\n    return [object]\n", "CatalogReader"),
    ],
)
def test_a_failing_plugin_is_named_and_the_others_keep_working(tmp_path: Path, body: str, words: str) -> None:
    write_plugin(tmp_path, "broken", body)
    write_plugin(tmp_path, "tint", GOOD)
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path),)))
    assert "shop.tint" in registry.stages and "color.enhance" in registry.stages
    assert len(registry.failures) == 1, registry.failures
    failure = registry.failures[0]
    assert failure.plugin.endswith("broken.py") or "broken" in failure.plugin
    assert words in failure.error


def test_an_entry_point_that_fails_to_import_is_named(tmp_path: Path, monkeypatch) -> None:
    """A real installed distribution (dist-info on sys.path) whose entry point names a module that is broken."""
    dist = tmp_path / "imgx_shop-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: imgx-shop\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imgx]\nshop = imgx_shop_broken\n")
    (tmp_path / "imgx_shop_broken.py").write_text("import not_installed_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry()
    assert [f.plugin for f in registry.failures] == ["shop (imgx-shop)"]
    assert "No module named 'not_installed_dependency'" in registry.failures[0].error
    assert "color.enhance" in registry.stages


def test_a_duplicate_stage_name_warns_and_the_later_plugin_wins(tmp_path: Path) -> None:
    write_plugin(tmp_path, "override", GOOD.replace("shop.tint", "color.gamma"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path),)))
    assert any("color.gamma" in str(w.message) and "replaces" in str(w.message) for w in caught)
    assert registry.stage_plugin("color.gamma").endswith("override.py")


def test_unknown_names_list_the_close_ones() -> None:
    registry = load_registry()
    with pytest.raises(PluginError, match=r"Did you mean 'color.enhance'") as info:
        registry.get_stage("color.enhanse")
    assert "geometry.fit" in str(info.value)
    with pytest.raises(PluginError, match="Known executors: local"):
        registry.get_executor("slurm")


def test_the_core_plugins_are_importable_modules_with_hooks() -> None:
    registry = load_registry()
    names = {registry.plugin_manager.get_name(p) for p in registry.plugin_manager.get_plugins()}
    assert set(CORE_PLUGINS) <= names


def hook_names() -> list[str]:
    return [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("imgx_")]


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_and_tested(hook: str) -> None:
    """The contract stays honest: a new hook needs docs (a summary and :return:) and a test plugin that implements
    it (this file's failing-plugin cases, conftest's test stages, the example plugin's tests...)."""
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert doc.split("\n")[0].strip() and ":return:" in doc, f"{hook} needs a one-line summary and :return: docs"
    implemented = [path for path in TESTS.rglob("*.py") if f"def {hook}(" in path.read_text(encoding="utf-8")]
    assert implemented, f"no test implements {hook}"


RENAMED = """
    import imgx

    class Tint(imgx.Stage):
        name = "shop.tint"
        summary = "A third-party stage, once called colour.tint."
        aliases = ("colour.tint",)

        def process(self, item):
            return item

    @imgx.hookimpl
    def imgx_stages():
        return [Tint]
"""


def test_a_renamed_stage_keeps_its_old_name_with_a_note_naming_the_line(tmp_path: Path) -> None:
    from imgx.plan import build_plan
    from imgx.recipe import parse_recipe

    write_plugin(tmp_path / "dir", "tint", RENAMED)
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "dir"),)))
    assert registry.get_stage("colour.tint") is registry.get_stage("shop.tint")
    assert registry.renamed_stage("colour.tint") == "shop.tint" and registry.renamed_stage("shop.tint") is None
    text = "version: 1\nname: r\ninput: {path: .}\nstages:\n  - id: a\n    uses: colour.tint\n"
    with pytest.warns(DeprecationWarning, match="stage 'colour.tint' is now called 'shop.tint'"):
        plan = build_plan(parse_recipe(text, path="r.yaml"), registry)
    assert plan.nodes[0].uses == "colour.tint"  # as written: the output hash, and so --resume, does not move
    assert plan.notes == (
        "r.yaml:6: stage 'colour.tint' is now called 'shop.tint'; the old name still works but is deprecated: "
        "write uses: shop.tint",
    )


def test_tryfirst_wins_over_a_plugin_loaded_later(tmp_path: Path) -> None:
    """Precedence is pluggy's: a tryfirst implementation's stage is kept although another plugin, loaded after it,
    registers the same name."""
    first = textwrap.dedent(GOOD).replace("@imgx.hookimpl", "@imgx.hookimpl(tryfirst=True)")
    write_plugin(tmp_path / "a", "a_first", first.replace("A third-party stage.", "first"))
    write_plugin(tmp_path / "b", "b_later", textwrap.dedent(GOOD).replace("A third-party stage.", "later"))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "a"), str(tmp_path / "b"))))
    assert registry.get_stage("shop.tint").summary == "first"
    assert registry.stage_plugin("shop.tint").endswith("a_first.py")


BACKEND_PLUGIN = """\
import imgx
from imgx.runtime import Backend


class {cls}(Backend):
{body}
    @classmethod
    def unavailable(cls, options):
        return None

    def load(self):
        pass

    def infer(self, x):
        return self.module(x)


@imgx.hookimpl
def imgx_backends():
    return [{cls}]
"""


def backend_plugin(cls: str, body: str) -> str:
    """A plugin module registering backend ``cls``, which runs the module as it is and is available everywhere;
    ``body``: its class attributes and further methods (indented as in a class)."""
    return BACKEND_PLUGIN.format(cls=cls, body=textwrap.indent(textwrap.dedent(body), "    "))


FAST_BACKEND = backend_plugin(
    "Reference",
    """
    name = "reference-plus"
    precisions = ("fp32",)
    dynamic_shapes = True
    auto_ranks = {("cpu", "fp32"): 1}
    """,
)


def test_a_plugin_backend_joins_autos_order_by_its_rank(tmp_path: Path) -> None:
    from imgx.runtime import BackendOptions, auto_order, choose_backend

    write_plugin(tmp_path / "dir", "fast", FAST_BACKEND)
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "dir"),)))
    assert auto_order(registry, "cpu", "fp32") == ("reference-plus", "onnxruntime", "eager", "compile")
    assert auto_order(registry, "cpu", "bf16") == ("eager", "compile")
    assert auto_order(registry, "cuda", "fp16") == ("tensorrt", "compile", "eager")
    choice = choose_backend("auto", BackendOptions(), registry)
    assert choice.name == "reference-plus" and "reference-plus, the first of auto's order" in choice.reason
    assert auto_order(load_registry(), "cpu", "fp32") == ("onnxruntime", "eager", "compile")


READY_BACKEND = backend_plugin(
    "Prebuilt",
    """
    # last of auto's order at BF16 unless its build for the module is on disk (a file named by the model key)
    name = "prebuilt"
    precisions = ("bf16",)
    auto_ranks = {("cpu", "bf16"): 90}
    ready_ranks = {("cpu", "bf16"): 1}
    asked = []

    @classmethod
    def ready(cls, options, channels):
        cls.asked.append((options.model_key, channels))
        return (options.cache_dir / f"{options.model_key}-c{channels}.built").is_file()
    """,
)


def test_a_plugin_backend_with_its_build_on_disk_goes_first_in_autos_order(tmp_path: Path) -> None:
    """``ready_ranks`` applies where ``ready`` finds the backend's build for the module and its input channels; ``auto``
    says why it picked it. Without channels (the module unknown) ``ready`` is not asked."""
    from imgx.runtime import BackendOptions, auto_order, choose_backend

    write_plugin(tmp_path / "dir", "prebuilt", READY_BACKEND)
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "dir"),)))
    prebuilt = registry.get_backend("prebuilt")
    options = BackendOptions(precision="bf16", cache_dir=tmp_path, model_key="abc")
    assert auto_order(registry, "cpu", "bf16", options, 3) == ("eager", "compile", "prebuilt")
    choice = choose_backend("auto", options, registry, 3)
    assert choice.name == "eager" and "prebuilt would go first once built (imgx build)" in choice.reason
    (tmp_path / "abc-c3.built").touch()
    assert auto_order(registry, "cpu", "bf16", options, 3) == ("prebuilt", "eager", "compile")
    choice = choose_backend("auto", options, registry, 3)
    assert choice.name == "prebuilt" and "its builds for this model are in the engine cache" in choice.reason
    assert choose_backend("auto", options, registry, 4).name == "eager"  # built for 3 channels only
    asked = len(prebuilt.asked)
    assert choose_backend("auto", options, registry).name == "eager" and len(prebuilt.asked) == asked
    assert prebuilt.asked[-1] == ("abc", 4)


EXECUTOR = """
    import pydantic
    import imgx
    from imgx.executors import Executor

    class QueueOptions(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        queue: str = pydantic.Field(description="The queue to submit to.")
        priority: int = pydantic.Field(default=0, ge=0, description="Higher runs first.")

    class QueueExecutor(Executor):
        name = "queue"
        Options = QueueOptions

    @imgx.hookimpl
    def imgx_executors():
        return [QueueExecutor]
"""


def test_a_plugin_executor_brings_its_own_typed_section(tmp_path: Path) -> None:
    from imgx import RecipeError
    from imgx.plan import build_plan
    from imgx.recipe import parse_recipe

    write_plugin(tmp_path / "dir", "queue", EXECUTOR)
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path / "dir"),)))
    head = "version: 1\nname: r\ninput: {path: .}\nstages:\n  - {id: a, uses: color.enhance}\nexecution:\n"
    plan = build_plan(parse_recipe(head + "  executor: queue\n  queue: {queue: nightly, priority: 2}\n"), registry)
    assert plan.settings.executor == "queue"
    assert plan.settings.executor_options.model_dump() == {"queue": "nightly", "priority": 2}
    assert build_plan(parse_recipe(head + "  executor: local\n"), registry).settings.executor_options is None
    with pytest.raises(RecipeError) as info:
        build_plan(
            parse_recipe(head + "  executor: queue\n  queue: {queue: nightly, priorty: 2}\n", path="r.yaml"), registry
        )
    assert (
        "r.yaml:8: execution.queue.priorty: unknown key; remove it or fix its spelling. Did you mean 'priority'?"
        in (f"{info.value.location}: {info.value}")
    )
    with pytest.raises(RecipeError, match=r"execution.queue: got unknown executor|unknown key"):
        build_plan(parse_recipe(head + "  executor: local\n  queue: {queue: x}\n"), load_registry())


MODULES_SEEN = """
    import json, os, sys
    from pathlib import Path
    import imgx

    class ModulesSeen(imgx.Stage):
        name = "shop.modules_seen"
        summary = "Writes which first-party plugin packages its process has imported (a test of worker start-up)."

        def process(self, item):
            seen = sorted(m for m in sys.modules if m.startswith("imgx_") and "." not in m)
            Path(os.environ["SEEN_DIR"], f"{os.getpid()}.json").write_text(json.dumps(seen))
            return item

    @imgx.hookimpl
    def imgx_stages():
        return [ModulesSeen]
"""


def test_workers_import_only_the_plugins_their_plan_uses(tmp_path: Path, photo_catalog: Path) -> None:
    """A pool worker that starts fresh (forkserver, as for a plan with a model stage; a Ray worker) of a run that uses
    a --plugins-dir stage and geometry.fit registers (and imports) those and the core plugins, not segmentation,
    style or the GAN plugins: each one costs every worker start-up time and memory (all installed ones: 226 MiB and
    1.7 s on a 2-vCPU EPYC; restore-lowres's three: 153 MiB, 0.7 s). Forked workers share the driver's modules."""
    import json

    from _support import basic_recipe, write_recipe
    from imgx.runner import RunOptions, prepare

    write_plugin(tmp_path / "plugins", "shop_seen", MODULES_SEEN)
    seen = tmp_path / "seen"
    seen.mkdir()
    recipe = basic_recipe(photo_catalog, tmp_path / "out", workers=2, batch_size=2)
    recipe["stages"] = [
        {"id": "seen", "uses": "shop.modules_seen"},
        {"id": "square", "uses": "geometry.fit", "needs": ["seen"], "with": {"size": 64}},
    ]
    recipe["outputs"] = ["square"]
    recipe["execution"]["start_method"] = "forkserver"
    path = write_recipe(tmp_path, recipe)
    options = RunOptions(plugin_config=PluginConfig(plugins_dirs=(str(tmp_path / "plugins"),)))
    _, registry, plan = prepare(path, options)
    used = plan.plugins_used(registry)
    assert "geometry (imgx)" in used and "segment (imgx)" not in used
    assert str(tmp_path / "plugins" / "shop_seen.py") in used  # a --plugins-dir module is named by its file
    assert {entry.plugin for entry in registry.backends.values()} <= set(used)  # auto may pick any backend

    # the CLI in a process of its own: a forkserver is one per process, and one started by an earlier test with
    # other preloaded modules would hand its workers those
    env = {**os.environ, "SEEN_DIR": str(seen)}
    command = [
        sys.executable,
        "-m",
        "imgx",
        "run",
        str(path),
        "--plugins-dir",
        str(tmp_path / "plugins"),
        "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    reports = [json.loads(p.read_text()) for p in seen.glob("*.json")]
    assert reports and all("imgx_geometry" in r and "imgx_segment" not in r and "imgx_style" not in r for r in reports)

    only = load_registry(options.plugin_config.restricted_to(used))
    assert set(only.stages) == {"shop.modules_seen", "geometry.fit", *_stages_of(registry, "geometry (imgx)")}
    assert set(only.backends) == set(registry.backends) and not only.failures


def _stages_of(registry, plugin: str) -> set[str]:
    return {name for name, entry in registry.stages.items() if entry.plugin == plugin}


def test_a_plan_needs_the_plugins_of_the_models_its_stages_load() -> None:
    from imgx.runner import RunOptions, prepare

    _, registry, plan = prepare(TESTS.parent / "recipes" / "restore-lowres.yaml", RunOptions())
    assert {"restore (imgx)", "gan (imgx)", "geometry (imgx)"} <= set(plan.plugins_used(registry))
    assert not {"segment (imgx)", "style (imgx)", "compliance (imgx)"} & set(plan.plugins_used(registry))


def test_loading_the_first_party_plugins_imports_no_heavy_library() -> None:
    """Every imgx command loads the installed plugins (``imgx --help`` as much as ``imgx run``): a plugin module that
    imports SciPy, PyTorch or ONNX Runtime at its top makes every command wait for it (SciPy's ndimage took 0.2 s of
    ``imgx run``'s start-up through ``imgx_compliance.rules``). They are imported where a stage first uses them."""
    script = textwrap.dedent(
        """
        import sys
        import imgx

        registry = imgx.load_registry()
        assert registry.failures == [], registry.failures
        heavy = ("scipy", "torch", "onnxruntime", "skimage", "sklearn", "matplotlib", "ray")
        print(",".join(sorted(name for name in heavy if name in sys.modules)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported at plugin load: {done.stdout.strip()}"
