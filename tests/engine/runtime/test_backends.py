"""Every registered backend against eager FP32 on real photos, honest unavailability, ``auto``, and the disk cache.

The network is a small real conv net of the style network's kind (reflection padding, instance norm, residual
blocks, nearest upsampling); the registered models go through every backend in test_models_smoke.py.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from _support import default_registry
from imgx import BackendError, PluginError
from imgx.registry import PluginConfig, load_registry
from imgx.runtime import BackendOptions, choose_backend, create_backend, resolve_backend
from imgx.runtime.keys import cache_key
from imgx.runtime.parity import compare

from .conftest import photo_tensor

PHOTOS = ("coffee", "astronaut")
# max abs difference from eager FP32 (0..1 outputs): FP32 backends reorder sums only; BF16 keeps 8 mantissa bits
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 6e-2}
MEAN_TOLERANCE = {"fp32": 1e-5, "fp16": 2e-3, "bf16": 1e-2}


def cases() -> list[tuple[str, str]]:
    registry = load_registry()
    return [(name, p) for name, entry in registry.backends.items() for p in ("fp32", "fp16", "bf16")]


@pytest.mark.parametrize(("backend", "precision"), cases())
def test_every_backend_matches_eager_fp32_on_real_photos_or_says_why_not(
    backend: str, precision: str, tiny_net, tmp_path: Path
) -> None:
    options = BackendOptions(device="cpu", precision=precision, cache_dir=tmp_path, model_key="tiny")
    registry = load_registry()
    problem = registry.get_backend(backend).unavailable(options)
    if problem is not None:
        assert problem.strip() and "\n" not in problem
        with pytest.raises(BackendError, match="cannot run here"):
            create_backend(backend, tiny_net, options, registry)
        pytest.skip(f"{backend} {precision}: {problem}")
    x = photo_tensor(PHOTOS)
    with torch.inference_mode():
        reference = tiny_net(x)
    runner = create_backend(backend, tiny_net, options, registry)
    runner.load()
    seconds = runner.warmup(tuple(x.shape))
    out = runner.infer(x)
    runner.close()
    assert seconds > 0 and out.dtype == torch.float32 and out.shape == reference.shape
    result = compare(reference, out)
    assert result["nonfinite"] == 0
    assert result["max_abs"] <= TOLERANCE[precision], result
    assert result["mean_abs"] <= MEAN_TOLERANCE[precision], result
    # the reference module is left as it was (backends work on copies)
    assert next(tiny_net.parameters()).dtype == torch.float32


def test_tensorrt_says_what_to_install_or_that_it_needs_a_gpu() -> None:
    import importlib.util

    from imgx.runtime.tensorrt import TensorRTBackend

    cpu = TensorRTBackend.unavailable(BackendOptions(device="cpu"))
    if importlib.util.find_spec("tensorrt") is None:
        assert cpu == "tensorrt is not installed; pip install 'imgx[tensorrt]'"
    else:
        assert cpu is not None and "needs a CUDA GPU" in cpu


def test_auto_on_the_cpu_picks_onnxruntime_at_fp32_and_eager_at_bf16() -> None:
    registry = load_registry()
    assert resolve_backend("auto", BackendOptions(precision="fp32"), registry) == "onnxruntime"
    choice = choose_backend("auto", BackendOptions(precision="bf16"), registry)
    assert choice.name == "eager" and choice.options.precision == "bf16" and "auto: eager" in choice.reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine without a CUDA GPU")
def test_auto_on_a_missing_gpu_falls_back_to_eager_fp32_on_the_cpu_with_one_line() -> None:
    choice = choose_backend("auto", BackendOptions(device="cuda", precision="fp16"), load_registry())
    assert choice.name == "eager" and choice.fell_back
    assert choice.options.precision == "fp32" and choice.options.device == "cpu"
    assert "needs a CUDA GPU" in choice.reason and "\n" not in choice.reason
    with pytest.raises(BackendError, match=r"got backend 'eager' at fp32 on cuda.*needs a CUDA GPU"):
        choose_backend("eager", BackendOptions(device="cuda"), load_registry())


def test_an_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(PluginError, match=r"Did you mean 'eager'.*Known backends: compile, eager, onnxruntime"):
        choose_backend("eagre", BackendOptions(), load_registry())


def test_an_unchanged_key_loads_the_export_from_disk_and_a_changed_key_rebuilds(tiny_net, tmp_path: Path) -> None:
    x = photo_tensor(("chelsea",))
    options = BackendOptions(cache_dir=tmp_path, model_key="weights-a")
    first = create_backend("onnxruntime", tiny_net, options, registry=default_registry())
    out_first = first.infer(x)
    assert first.exported  # this instance exported the graph
    path = first.onnx_file
    assert path is not None and path.is_file() and path.parent.parent == tmp_path
    stamp = path.stat().st_mtime_ns

    again = create_backend("onnxruntime", tiny_net, options, registry=default_registry())
    out_again = again.infer(x)
    assert not again.exported  # loaded from the cache, not exported again
    assert again.onnx_file == path and path.stat().st_mtime_ns == stamp
    assert torch.equal(out_first, out_again)

    changed = create_backend(
        "onnxruntime", tiny_net, dataclasses.replace(options, model_key="weights-b"), registry=default_registry()
    )
    changed.infer(x)
    assert changed.exported and changed.onnx_file != path
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == sorted([path.name, changed.onnx_file.name])


def test_the_cache_key_covers_every_part() -> None:
    base = ("tensorrt", "weights", "1-4x3x768x1024", "fp16", "cpu")
    keys = {cache_key(*base)}
    for index, changed in enumerate(("onnxruntime", "weights2", "1-4x3x1024x1024", "bf16")):
        parts = list(base)
        parts[index] = changed
        keys.add(cache_key(*parts))
    keys.add(cache_key(*base, "trt 10.1"))
    assert len(keys) == 6 and cache_key(*base) == cache_key(*base)


def test_a_backend_from_a_plugin_registers_and_runs(tiny_net, tmp_path: Path) -> None:
    """A third-party backend through the imgx_backends hook: eager at float64, a real (slow, exact) backend."""
    (tmp_path / "double.py").write_text(
        textwrap.dedent(
            '''
            import torch

            import imgx
            from imgx.runtime import Backend


            class DoubleBackend(Backend):
                """The module at float64 on the CPU."""

                name = "eager64"

                @classmethod
                def unavailable(cls, options):
                    return None if options.device == "cpu" else "eager64 runs on the CPU only"

                def load(self):
                    import copy

                    self.runner = copy.deepcopy(self.module).double()

                def infer(self, x):
                    with torch.inference_mode():
                        return self.runner(x.double()).float()


            @imgx.hookimpl
            def imgx_backends():
                return [DoubleBackend]
            '''
        )
    )
    registry = load_registry(PluginConfig(plugins_dirs=(str(tmp_path),)))
    assert registry.failures == [] and "eager64" in registry.backends
    x = photo_tensor(("rocket",))
    runner = create_backend("eager64", tiny_net, BackendOptions(), registry)
    runner.load()
    with torch.inference_mode():
        assert compare(tiny_net(x), runner.infer(x))["max_abs"] < 1e-5
    assert "eager64" not in load_registry().backends
    assert os.environ.get("IMGX_PLUGINS") is None


def test_compile_works_after_something_looked_for_pip(tmp_path: Path) -> None:
    """``importlib.util.find_spec("pip")`` (the registry's pip source does it) switches setuptools' distutils shim off
    on Python < 3.12, after which Inductor's import of setuptools failed; a fresh process shows the backend copes."""
    import subprocess
    import sys

    script = textwrap.dedent(
        """
        import importlib.util
        import torch
        from imgx import load_registry
        from imgx.runtime import BackendOptions, create_backend

        importlib.util.find_spec("pip")
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Sigmoid()).eval()
        x = torch.rand(1, 3, 16, 16)
        out = create_backend("compile", net, BackendOptions(), registry=load_registry()).infer(x)
        print("max diff", float((out - net(x)).abs().max()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split("max diff")[1]) < 1e-5


def test_the_exported_graph_is_readable_as_the_umask_allows(tiny_net, tmp_path: Path) -> None:
    """The engine cache may be shared: the export gets ``0o666`` minus the umask, not mkstemp's ``0o600``."""
    old = os.umask(0o027)
    try:
        backend = create_backend(
            "onnxruntime", tiny_net, BackendOptions(cache_dir=tmp_path, model_key="mode"), registry=default_registry()
        )
        backend.infer(photo_tensor(("chelsea",)))
    finally:
        os.umask(old)
    assert backend.onnx_file is not None and backend.onnx_file.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [backend.onnx_file.name]  # no temp file left


def test_compile_builds_a_shape_once_and_the_next_backend_and_process_load_it(tiny_net, tmp_path: Path) -> None:
    """On the CPU, ``compile`` builds the first input shape ahead of time into a package in the engine cache: a second
    backend for the same module, and a second process, load it (nothing built) and give the same pixels; another
    precision is another package. The next shape builds one package with dynamic batch, height and width, which
    every later shape, batch size and backend then runs: two builds for a catalog of mixed sizes, and no image padded
    to a shape bucket (the network's instance norm would see the padding)."""
    import subprocess
    import sys

    from imgx.runtime.compile import PackageCounter

    options = BackendOptions(cache_dir=tmp_path, model_key="tiny")
    x = photo_tensor(("chelsea",), side=96)
    before = PackageCounter.count
    first = create_backend("compile", tiny_net, options, default_registry())
    assert type(first).any_shape(options) and not type(first).any_shape(dataclasses.replace(options, device="cuda"))
    out = first.infer(x)
    assert PackageCounter.count == before + 1
    package = first.package_path(tuple(x.shape))
    assert first.builds_on_disk()
    assert package.is_file()
    assert [p.name for p in package.parent.iterdir() if not p.name.endswith(".lock")] == [package.name]  # no temp
    with torch.inference_mode():
        assert compare(tiny_net(x), out)["max_abs"] <= TOLERANCE["fp32"]

    second = create_backend("compile", tiny_net, options, default_registry())
    assert torch.equal(second.infer(x), out) and PackageCounter.count == before + 1
    bf16 = create_backend("compile", tiny_net, dataclasses.replace(options, precision="bf16"), default_registry())
    assert bf16.package_path(tuple(x.shape)) != package

    torch.save({"x": x, "out": out}, tmp_path / "expected.pt")
    net_folder = Path(sys.modules[type(tiny_net).__module__].__file__).parent
    script = textwrap.dedent(
        f"""
        import sys, torch
        sys.path.insert(0, {str(net_folder)!r})
        from imgx_test_tinynet import trained_like
        from imgx import load_registry
        from imgx.runtime import BackendOptions, create_backend
        from imgx.runtime.compile import PackageCounter

        saved = torch.load({str(tmp_path / "expected.pt")!r})
        net = trained_like()
        options = BackendOptions(cache_dir={str(tmp_path)!r}, model_key="tiny")
        out = create_backend("compile", net, options, load_registry()).infer(saved["x"])
        print("built", PackageCounter.count, "equal", torch.equal(out, saved["out"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["built", "0", "equal", "True"]

    photos = photo_tensor(("coffee", "astronaut", "chelsea"), side=96)
    others = [photos[1:2, :, :64, :96], photos[:, :, :72, :88]]  # another size, then three at a third
    outputs = [second.infer(y) for y in others]
    assert PackageCounter.count == before + 2  # the dynamic-shape package
    assert second.package_path(None, 3).is_file()
    with torch.inference_mode():
        for y, got in zip(others, outputs, strict=True):
            assert got.shape == y.shape and compare(tiny_net(y), got)["max_abs"] <= TOLERANCE["fp32"]
    again = create_backend("compile", tiny_net, options, default_registry())
    assert torch.equal(again.infer(others[1]), outputs[1]) and PackageCounter.count == before + 2


class ShapeBranch(torch.nn.Module):
    """A module whose branch depends on its input's width: exported for one width, it is wrong for the other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5 if x.shape[-1] > 100 else 1.0 - x


def test_compile_checks_the_dynamic_package_and_builds_per_shape_where_it_is_wrong(tmp_path: Path) -> None:
    """A dynamic-shape package that differs from eager (U2-Netp's returned NaN) is not kept: the cache marks it
    unusable, the run warns once and each shape gets a package of its own, and the next backend does not try again."""
    from imgx.runtime.compile import PackageCounter

    options = BackendOptions(cache_dir=tmp_path, model_key="branchy-width")
    backend = create_backend("compile", ShapeBranch().eval(), options, default_registry())
    narrow, wide, wider = torch.rand(1, 3, 16, 64), torch.rand(1, 3, 16, 160), torch.rand(1, 3, 16, 200)
    before = PackageCounter.count
    assert torch.allclose(backend.infer(narrow), 1.0 - narrow)
    with pytest.warns(RuntimeWarning, match=r"ShapeBranch with dynamic shapes is unusable \(16 x 64: .*mean diff"):
        assert torch.allclose(backend.infer(wide), wide * 0.5)
    assert PackageCounter.count == before + 2  # two shapes' own packages; the dynamic one was not kept
    assert not backend.package_path(None, 3).exists()
    assert "mean difference" in backend.package_path(None, 3).with_suffix(".unusable").read_text()
    again = create_backend("compile", ShapeBranch().eval(), options, default_registry())
    assert torch.allclose(again.infer(narrow), 1.0 - narrow) and PackageCounter.count == before + 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second attempt, no second warning
        assert torch.allclose(again.infer(wider), wider * 0.5)
    assert PackageCounter.count == before + 3


def test_compile_keys_packages_by_the_cpu_features_kernels_use(tiny_net, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package built where the CPU lists AMX must not be loaded where it lists only AVX2 (VMs with the same CPU
    model name differ in their flags); flags that do not change kernels leave the key as it is."""
    import imgx.machine

    backend = create_backend("compile", tiny_net, BackendOptions(model_key="tiny"), default_registry())
    paths = {}
    for name, flags in {
        "avx2": {"avx2", "fma"},
        "amx": {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"},
        "avx2-in-a-vm": {"avx2", "fma", "hypervisor", "rdrand"},
    }.items():
        monkeypatch.setattr(imgx.machine, "cpu_flags", lambda flags=flags: frozenset(flags))
        paths[name] = backend.package_path((1, 3, 32, 32))
    assert paths["avx2"] != paths["amx"] and paths["avx2"] == paths["avx2-in-a-vm"]


class DataDependent(torch.nn.Module):
    """A module whose branch depends on its input's values: ``torch.export`` cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.mean()) > 0.5:
            return 1.0 - x
        return x * 0.5


def test_compile_runs_a_module_export_cannot_trace_through_torch_compile_and_says_so(tmp_path: Path) -> None:
    options = BackendOptions(cache_dir=tmp_path, model_key="branchy")
    backend = create_backend("compile", DataDependent().eval(), options, default_registry())
    x = photo_tensor(("coffee",))
    with pytest.warns(RuntimeWarning, match=r"DataDependent could not be compiled ahead of time.*torch.compile"):
        out = backend.infer(x)
    assert torch.allclose(out, DataDependent()(x), atol=1e-6)
    assert not list((tmp_path / "inductor").glob("*.pt2"))
    bright = torch.full((1, 3, 16, 16), 0.9)  # the other branch: torch.compile guards on the value and recompiles
    assert torch.allclose(backend.infer(bright), 1.0 - bright, atol=1e-6)


SERIES_SCRIPT = """
import json, resource, sys
import numpy as np
from imgx.heap import return_large_frees
from imgx.runtime import BackendOptions, create_backend
from _support import default_registry, real_photo
import imgx_test_tinynet

return_large_frees()  # as every worker does: large frees go back to the system, so a shrunk arena is faulted in again
options = BackendOptions(cache_dir=sys.argv[1], model_key="series")
backend = create_backend("onnxruntime", imgx_test_tinynet.trained_like(), options, registry=default_registry())
photo = np.ascontiguousarray(real_photo("chelsea", long_side=512)[None].transpose(0, 3, 1, 2) / 255.0, np.float32)
reference = backend.infer_array(photo).copy()

def per_call(outputs):
    counts, same = [], True
    while True:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        out = next(outputs, None)  # each output is made when asked for: the faults are that call's
        if out is None:
            return counts, same
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        same = same and np.array_equal(out, reference)  # outputs are not kept: they may hold arena memory
        del out

shrunk, same_single = per_call(backend.infer_array(photo) for _ in range(4))
kept, same_series = per_call(backend.infer_series(iter([photo] * 4)))
after, _ = per_call(backend.infer_array(photo) for _ in range(1))
same = same_single and same_series
print(json.dumps({"shrunk": shrunk, "kept": kept, "after": after, "same": same, "shape": list(photo.shape)}))
"""


def test_onnxruntime_keeps_its_arena_through_a_series_and_gives_it_back_after_the_last_call(
    net_module, tmp_path: Path
) -> None:
    """A series of calls of one shape gives what one call each gives; its arena is faulted in once for the series
    (kept between its calls), where a call that shrinks the arena has it faulted in again by the next call; after the
    series' last call the arena is given back. Measured in a fresh process set up as a worker (page faults per call)."""
    import json
    import subprocess
    import sys

    tests = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(Path(net_module.__file__).parent)])}
    done = subprocess.run(
        [sys.executable, "-c", SERIES_SCRIPT, str(tmp_path / "engines")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    faults = json.loads(done.stdout.strip().splitlines()[-1])
    assert faults["same"]
    shrunk, kept, after = faults["shrunk"], faults["kept"], faults["after"]
    # after each series' first call, kept calls fault a small part of what calls after a shrink do (thousands of
    # pages against a few)
    assert max(kept[1:]) * 10 < min(shrunk[1:]), faults
    assert after[0] * 3 > min(shrunk[1:]) * 2, faults  # the series' last call gave the arena back
