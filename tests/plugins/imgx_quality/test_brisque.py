"""BRISQUE (``metrics: [brisque]``) against brisque 0.2.0's own code on real photos, its ranking of blurred and JPEG
copies, the files of the ``brisque-live`` model, and ``q.brisque`` in the ledger of a real ``imgx run``.

The reference is ``brisque/brisque.py`` taken from the pinned wheel by the registry (sha256-checked) and executed as
is (the package is never installed or imported) with the model files the registry fetched. Two things around it:

- it imports ``libsvm.svmutil``, which is not installed here. The stand-in below reads the model's support vectors
  with scikit-learn's svmlight reader and predicts with libsvm's own C code as compiled into scikit-learn
  (``sklearn.svm._libsvm.predict``, an epsilon-SVR), which is what ``svm_predict_probability`` returns for an SVR;
- on NumPy 2 its ``score`` stops at ``float(f)`` on its own features ("only 0-dimensional arrays can be converted to
  Python scalars": some features are shape-(1,) arrays, from dividing by an array's ``shape``). The test flattens
  each feature to its one float (the values are unchanged) and lets the rest of ``score`` run.
"""

from __future__ import annotations

import ctypes
import io
import json
import pickle
import sys
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from _support import default_registry, frozen, load_original, load_photo, load_rgba_pack, pinned_source, write_recipe
from imgx import Item, StageContext
from imgx.ledger import read_ledger
from imgx.models import ensure_files, get_spec
from imgx.runner import run_recipe
from imgx_quality import (
    ALL_METRICS,
    BRISQUE_MODEL,
    METRICS,
    Brisque,
    MetricsParams,
    QualityMetrics,
    brisque_features,
    measure,
)
from imgx_quality.brisque import SvrModel, load_scale

PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket")
ORIGINAL_IMPORTS = {
    "collections", "itertools", "pickle", "os", "numpy", "scipy", "scipy.signal", "scipy.ndimage.filters",
    "scipy.special", "scipy.optimize", "skimage.io", "skimage.color", "libsvm", "requests", "brisque.models",
}  # fmt: skip


def photo(name: str) -> np.ndarray:
    """A real photo at its shipped size, RGB; ``camera`` (grey) as three equal channels (the original's rgb2gray
    refuses a grey image)."""
    if name == "camera":
        from skimage import data

        return np.repeat(data.camera()[..., None], 3, axis=2)
    return load_photo(name)


def on_white() -> np.ndarray:
    """Matplotlib's gift pack composited on white, 512 px: a product shot with a flat background."""
    rgb, alpha = load_rgba_pack()
    a = alpha[..., None] / 255.0
    composite = np.round(rgb * a + 255 * (1 - a)).astype(np.uint8)
    return cv2.resize(composite, (512, 512), interpolation=cv2.INTER_CUBIC)


def blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 3.0)


def jpeg5(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=5)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    """The verified cached ``svm.txt`` and ``normalize.pickle`` (pulled from the pinned wheel on first use)."""
    return ensure_files(get_spec(BRISQUE_MODEL, default_registry()), registry=default_registry())


@pytest.fixture(scope="module")
def scorer(files: dict[str, Path]) -> Brisque:
    return Brisque.from_files(files)


class _LibsvmModel:
    """What ``svmutil.svm_load_model`` gives, read independently of imgx: header by hand, vectors by scikit-learn."""

    def __init__(self, path: str | Path) -> None:
        from sklearn.datasets import load_svmlight_file

        lines = Path(path).read_text(encoding="ascii").splitlines()
        start = lines.index("SV")
        header = {line.split()[0]: line.split()[1:] for line in lines[:start]}
        assert header["svm_type"] == ["epsilon_svr"] and header["kernel_type"] == ["rbf"], header
        vectors, coef = load_svmlight_file(io.BytesIO("\n".join(lines[start + 1 :]).encode()), n_features=36)
        self.support_vectors = np.ascontiguousarray(vectors.toarray(), np.float64)
        self.coef = np.ascontiguousarray(coef[None], np.float64)
        self.gamma = float(header["gamma"][0])
        self.rho = float(header["rho"][0])


def _libsvm_predict(model: _LibsvmModel, x: Any, prob_estimates: Any = None) -> float:
    from sklearn.svm import _libsvm

    n = model.support_vectors.shape[0]
    return float(
        _libsvm.predict(
            np.asarray(x, np.float64)[None],
            np.arange(n, dtype=np.int32),
            model.support_vectors,
            np.array([n, 0], np.int32),  # scikit-learn's n_support of a regression
            model.coef,
            np.array([-model.rho]),  # scikit-learn's intercept is libsvm's -rho
            svm_type=3,  # epsilon_svr
            kernel="rbf",
            gamma=model.gamma,
        )[0]
    )


def _node_array(values: list[float], isKernel: bool = False) -> tuple[np.ndarray, None]:
    return np.asarray(values, np.float64), None


def _libsvm_stand_in() -> types.ModuleType:
    svmutil = types.ModuleType("libsvm.svmutil")
    svmutil.svm_load_model = _LibsvmModel  # type: ignore[attr-defined]
    svmutil.c_double = ctypes.c_double  # type: ignore[attr-defined]
    svmutil.gen_svm_nodearray = _node_array  # type: ignore[attr-defined]
    svmutil.libsvm = types.SimpleNamespace(svm_predict_probability=_libsvm_predict)  # type: ignore[attr-defined]
    package = types.ModuleType("libsvm")
    package.__path__ = []  # type: ignore[attr-defined]
    package.svmutil = svmutil  # type: ignore[attr-defined]
    return package


@pytest.fixture(scope="module")
def original(files: dict[str, Path]) -> Any:
    """brisque 0.2.0's ``BRISQUE`` on the registry's model files, its features flattened to floats (see above)."""
    path = pinned_source(
        "pip:brisque==0.2.0#brisque/brisque.py",
        "c6b5b7b4463a00b42fd467c62d0f244cc5f98cc53b82212d20a4dbc656b1d5e3",
        10_931,
    )
    libsvm = _libsvm_stand_in()
    models = types.ModuleType("brisque.models")
    models.MODEL_PATH = str(files["svm"].parent)  # type: ignore[attr-defined]
    package = types.ModuleType("brisque")
    package.__path__ = []  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its `import scipy.ndimage.filters`
        for name, module in [("libsvm", libsvm), ("libsvm.svmutil", libsvm.svmutil), ("brisque", package)]:
            patch.setitem(sys.modules, name, module)
        patch.setitem(sys.modules, "brisque.models", models)
        patch.setitem(sys.modules, "brisque.brisque", types.ModuleType("brisque.brisque"))  # removed again after
        module = load_original(path, "brisque.brisque", ORIGINAL_IMPORTS)
    reference = module.BRISQUE(url=False, model_path={"svm": str(files["svm"]), "normalize": str(files["normalize"])})
    features = reference.calculate_brisque_features
    reference.calculate_brisque_features = lambda *args, **kwargs: np.array(
        [float(np.ravel(f)[0]) for f in features(*args, **kwargs)], dtype=object
    )
    reference.raw_features = features
    return reference


@pytest.mark.parametrize("name", [*PHOTOS, "on_white", "astronaut_jpeg5"])
def test_scores_and_features_match_the_original(name: str, scorer: Brisque, original: Any) -> None:
    image = on_white() if name == "on_white" else jpeg5(photo("astronaut")) if name.endswith("jpeg5") else photo(name)
    expected = original.score(image)
    got = scorer(frozen(image))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-6), (got, expected)
    from skimage.color import rgb2gray

    grey = rgb2gray(image)
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    reference = [float(np.ravel(f)[0]) for g in (grey, half) for f in original.raw_features(g, 7, 7 / 6)]
    assert brisque_features(image) == pytest.approx(reference, rel=1e-6, abs=1e-12)


def test_the_svr_is_libsvms(scorer: Brisque, files: dict[str, Path]) -> None:
    """The parsed SVR predicts what libsvm's C code predicts on the same file, on scaled features and at random."""
    model = _LibsvmModel(files["svm"])
    assert scorer.svr.support_vectors.shape == (770, 36) and scorer.svr.gamma == 0.05
    assert np.array_equal(scorer.svr.support_vectors, model.support_vectors)
    assert np.array_equal(scorer.svr.coef, model.coef[0]) and scorer.svr.rho == model.rho
    rng = np.random.default_rng(0)
    points = [*rng.uniform(-1, 1, (8, 36)), scorer.scaled(brisque_features(photo("coffee")))]
    for x in points:
        assert scorer.svr.decision(x) == pytest.approx(_libsvm_predict(model, x), rel=1e-12, abs=1e-9)


def test_the_scaling_loads_without_any_global(files: dict[str, Path], original: Any) -> None:
    low, high = load_scale(files["normalize"])
    assert low.tolist() == original.scale_params["min_"] and high.tolist() == original.scale_params["max_"]
    for hostile in (OrderedDict(min_=[0.0]), {"min_": np.zeros(36), "max_": np.ones(36)}):
        path = files["normalize"].parent / "hostile.pickle"
        try:
            path.write_bytes(pickle.dumps(hostile))
            with pytest.raises(pickle.UnpicklingError, match="expected plain lists and floats only"):
                load_scale(path)
        finally:
            path.unlink(missing_ok=True)


def test_svr_files_are_checked() -> None:
    with pytest.raises(ValueError, match="expected epsilon_svr"):
        SvrModel.parse("svm_type c_svc\nkernel_type rbf\ngamma 1\nrho 0\nSV\n1 1:0.5\n")
    with pytest.raises(ValueError, match="expected total_sv 2"):
        SvrModel.parse("svm_type epsilon_svr\nkernel_type rbf\ngamma 1\nrho 0\ntotal_sv 2\nSV\n1 1:0.5\n")
    sparse = SvrModel.parse("svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\nrho 1\nSV\n2 2:1\n-1 1:1 3:2\n", 3)
    assert sparse.support_vectors.tolist() == [[0, 1, 0], [1, 0, 2]]
    x = np.array([1.0, 1.0, 0.0])
    assert sparse.decision(x) == pytest.approx(2 * np.exp(-0.5 * 1) - np.exp(-0.5 * 5) - 1)  # |x - sv|^2: 1 and 5


@pytest.mark.parametrize("name", ("astronaut", "coffee", "chelsea", "camera"))
def test_blur_and_jpeg_score_worse(name: str, scorer: Brisque) -> None:
    image = photo(name)
    clean, soft, blocky = scorer(image), scorer(blurred(image)), scorer(jpeg5(image))
    assert clean is not None and soft is not None and blocky is not None
    assert clean + 20 < soft and clean + 20 < blocky, (clean, soft, blocky)


def test_a_flat_picture_has_no_score(scorer: Brisque) -> None:
    for value in (0, 128, 255):
        assert scorer(np.full((48, 64, 3), value, np.uint8)) is None
    values = measure(photo("chelsea"), photo("chelsea"), metrics=("brisque",), brisque=scorer)
    assert set(values) == {"brisque"} and values["brisque"] == pytest.approx(scorer(photo("chelsea")))


def test_brisque_is_named_never_a_default() -> None:
    """The default list (and so every existing recipe's output hash) is unchanged; the model is declared only when
    brisque is asked for."""
    assert METRICS == ("ssim", "psnr", "product_delta_e", "sharpness") and MetricsParams().metrics == METRICS
    assert set(ALL_METRICS) - set(METRICS) == {"brisque"}
    assert QualityMetrics.models(MetricsParams()) == ()
    assert QualityMetrics.models(MetricsParams(metrics=("ssim", "brisque"))) == (BRISQUE_MODEL,)
    with pytest.raises(ValueError, match="no scorer"):
        measure(photo("chelsea"), photo("chelsea"), metrics=("brisque",))


def test_the_stage_loads_the_model_once_and_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]
) -> None:
    loads = []
    real = Brisque.from_registry.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Brisque], registry: Any, **kwargs: Any) -> Brisque:
        loads.append(registry)
        return real(cls, registry, **kwargs)

    monkeypatch.setattr(Brisque, "from_registry", classmethod(counted))
    image = frozen(cv2.resize(photo("coffee"), (240, 160), interpolation=cv2.INTER_AREA))
    items = [Item(f"s{i}", f"s{i}.png", image) for i in range(3)]
    plain = QualityMetrics(MetricsParams(metrics=("ssim", "sharpness")), StageContext())  # no registry needed
    assert all("brisque" not in out.metrics for out in plain(items, items)) and loads == []
    stage = QualityMetrics(MetricsParams(metrics=("sharpness", "brisque")), StageContext(registry=default_registry()))
    done = stage(items, items)
    assert len(loads) == 1 and len({out.metrics["brisque"] for out in done}) == 1
    assert done[0].metrics["brisque"] == pytest.approx(Brisque.from_files(files)(image))


def test_the_stage_writes_q_brisque_into_the_ledger(tmp_path: Path, scorer: Brisque) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        small = cv2.resize(photo(name), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        Image.fromarray(small).save(catalog / f"{name}.png")
    out = tmp_path / "out"
    body = {
        "version": 1,
        "name": "brisque",
        "input": {"path": str(catalog), "pattern": "*.png"},
        "output": {"dir": str(out), "format": "png", "naming": "{sku}/{output}.{ext}"},
        "execution": {"workers": 1, "batch_size": 2},
        "stages": [
            {"id": "bright", "uses": "color.gamma", "with": {"gamma": 1.3}},
            {"id": "q", "uses": "quality.metrics", "needs": ["bright", "source"], "with": {"metrics": ["brisque"]}},
        ],
        "outputs": ["q"],
    }
    summary = run_recipe(write_recipe(tmp_path, body))
    assert summary.items == 3 and summary.items_failed == 0
    for row in read_ledger(out).to_pylist():
        metrics = json.loads(row["metrics"])
        written = np.asarray(Image.open(out / row["sku"] / "q.png").convert("RGB"))
        assert set(metrics) == {"q.brisque"} and metrics["q.brisque"] == pytest.approx(scorer(written), abs=1e-9)
