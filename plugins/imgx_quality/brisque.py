"""BRISQUE, a no-reference quality score: lower is better (about 0 for a clean photo, 100 and more for a ruined one).

The model is the one shipped in the wheel ``brisque==0.2.0`` on the package index (Apache-2.0, its ``METADATA``:
``License: Apache-2.0``; https://github.com/rehanguha/brisque): ``brisque/models/svm.txt``, a libsvm epsilon-SVR with
an RBF kernel over 36 features, and ``brisque/models/normalize.pickle``, the per-feature ``min_``/``max_`` that scale
the features to -1..1. Both are registered as the imgx model ``brisque-live`` (:data:`BRISQUE_LIVE`, no PyTorch
module: ``build=None``); the registry's ``pip:`` source downloads the pinned wheel without its dependencies, extracts
each member and checks its sha256. The brisque package is never installed or imported (it needs libsvm and requests).

What runs here is written for imgx after brisque 0.2.0's ``brisque/brisque.py`` (read, not copied), with numpy,
OpenCV, scipy and scikit-image, and gives its scores (the tests run the original on real photos and compare: they
agree to about 1e-12):

- grey: scikit-image's ``rgb2gray`` of the RGB image, ``0.2125 R + 0.7154 G + 0.0721 B`` in float64 0..1;
- MSCN coefficients: ``(I - mu) / (sigma + 1/255)``, where ``mu`` is ``I`` filtered with a normalised 7 x 7 Gaussian
  (sigma 7/6) with zero padding (scipy's ``convolve2d(..., "same")``) and ``sigma = sqrt(|mu^2 - G * I^2|)``;
- the MSCN coefficients and their products with the right, lower, lower-right and lower-left neighbour; an
  asymmetric generalised Gaussian fitted to each by moments: ``gamma = sqrt(mean(x^2 | x<0) / mean(x^2 | x>=0))``,
  ``R = (mean|x|)^2 / mean(x^2) * (gamma^3 + 1)(gamma + 1) / (gamma^2 + 1)^2`` and the shape ``alpha`` the root of
  ``G(2/a)^2 / (G(1/a) G(3/a)) = R`` (the original runs ``scipy.optimize.root`` from 0.2; Brent's method on a bracket
  finds the same root, since the left side rises monotonically);
- features: ``alpha`` and ``(sl^2 + sr^2) / 2`` of the MSCN, and ``alpha``, the mean
  ``(sr - sl) G(2/a) / G(1/a) sqrt(G(1/a) / G(3/a))``, ``sl^2``, ``sr^2`` of each product: 18; again on the grey
  image halved with ``cv2.resize(..., fx=0.5, fy=0.5, INTER_CUBIC)``: 36;
- scaled ``-1 + 2 (f - min_) / (max_ - min_)``; the score is the SVR's decision
  ``sum_i coef_i exp(-gamma |x - sv_i|^2) - rho`` over the support vectors of ``svm.txt`` (parsed here: its header,
  then ``coef index:value ...`` per line), what libsvm's ``svm_predict`` returns for an epsilon-SVR.

Flat areas: where the picture is one flat value (a white background, clipped highlights) ``I - mu`` is 0 give or
take the last bit of the convolution's rounding, and that bit decides whether the pixel counts on the left (``x < 0``)
or the right side of the fit, whose sample sizes move the features. So the grey image and the two filters are
computed with the very functions the original uses (``rgb2gray``, scipy's ``convolve2d``): a separable OpenCV filter,
several times faster, rounds otherwise and moves the score of a product on white by about 1 %. BRISQUE was trained on
natural photos: a large flat background alone scores it far worse (a photo padded with white goes from 3 to 97).

One difference: where the fit has no root (``R`` outside the shapes 0.01..100: flat or binary pictures) the original's
solver returns wherever it stopped; here the shape is clamped to the bracket. A picture whose fit has an empty side
(one flat colour: no coefficient below 0) has no score, ``None``, where the original returns NaN.

``normalize.pickle`` holds ``{"min_": [36 floats], "max_": [36 floats]}`` in pickle protocol 4: dicts, lists, strings
and floats only, no global at all. It is read with :class:`_PlainUnpickler`, whose ``find_class`` refuses every
global, so the file cannot make pickle import or call anything (its sha256 is pinned too).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from imgx.models import ModelSpec, WeightFile

# scipy and scikit-image are imported in the functions that use them: at module level they cost ~0.4 s of every
# `imgx` command, which loads this plugin to know its stages whether a recipe uses them or not

if TYPE_CHECKING:
    import imgx

__all__ = [
    "BRISQUE_LIVE",
    "BRISQUE_MODEL",
    "Brisque",
    "SvrModel",
    "brisque_features",
    "grey",
    "load_scale",
    "mscn",
]

BRISQUE_MODEL = "brisque-live"
FEATURES = 36
KERNEL_SIZE = 7
KERNEL_SIGMA = 7 / 6
C = 1 / 255  # added to the local deviation (the grey image is 0..1)
ALPHA_BRACKET = (0.01, 100.0)  # the shapes the fit looks for its root between

BRISQUE_LIVE = ModelSpec(
    name=BRISQUE_MODEL,
    files={
        "svm": WeightFile(
            filename="svm.txt",
            sha256="19526fb799c4c7992ccc109fcfecddb25976ba024b194cd3ee275d27e8909c8d",
            sources=("pip:brisque==0.2.0#brisque/models/svm.txt",),
            size=351_414,
        ),
        "normalize": WeightFile(
            filename="normalize.pickle",
            sha256="a91753fe7088efe0b40e4d091315201fdb067966fc6785cf465e1eab060acda9",
            sources=("pip:brisque==0.2.0#brisque/models/normalize.pickle",),
            size=686,
        ),
    },
    build=None,  # an SVR over 36 hand-made features: numpy runs it, no PyTorch module
    summary="BRISQUE no-reference quality (libsvm epsilon-SVR, RBF, 770 support vectors, and its feature scaling); "
    "quality.metrics' brisque (brisque 0.2.0's models/svm.txt and models/normalize.pickle).",
    licence="Apache-2.0 (brisque 0.2.0 wheel)",
    homepage="https://github.com/rehanguha/brisque",
    in_channels=3,
    sides=(1024,),
    bench_sides=(1024,),
    precisions=("fp32",),
)


def grey(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB (or ``(H, W, 4)``, alpha ignored, or ``(H, W)`` grey) -> ``(H, W)`` float64 in 0..1:
    scikit-image's ``rgb2gray`` (``img_as_float`` for a grey image), as the original converts."""
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    if image.ndim == 2:
        return img_as_float(image).astype(np.float64, copy=False)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"got an image of shape {image.shape}; expected (H, W, 3) RGB, (H, W, 4) RGBA or (H, W)")
    return rgb2gray(np.ascontiguousarray(image[..., :3])).astype(np.float64, copy=False)


def _gaussian() -> np.ndarray:
    """The normalised 7 x 7 Gaussian window, computed as the original computes it (the same bits)."""
    y, x = np.indices((KERNEL_SIZE, KERNEL_SIZE)) - KERNEL_SIZE // 2
    kernel = 1 / (2 * np.pi * KERNEL_SIGMA**2) * np.exp(-(x**2 + y**2) / (2 * KERNEL_SIGMA**2))
    return kernel / np.sum(kernel)


_WINDOW = _gaussian()


def _filter(image: np.ndarray) -> np.ndarray:
    from scipy.signal import convolve2d

    # scipy's direct convolution with zero padding, as the original: see the module's note on flat areas
    return convolve2d(image, _WINDOW, "same")


def mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a ``(H, W)`` float64 grey image in 0..1."""
    image = np.ascontiguousarray(image, dtype=np.float64)
    mu = _filter(image)
    sigma = np.sqrt(np.abs(mu * mu - _filter(image * image)))
    return (image - mu) / (sigma + C)


def _phi(alpha: float) -> float:
    """``G(2/a)^2 / (G(1/a) G(3/a))``, rising from 0 to 3/4 as ``a`` grows."""
    from scipy.special import gammaln

    return float(np.exp(2 * gammaln(2 / alpha) - gammaln(1 / alpha) - gammaln(3 / alpha)))


def _shape(target: float) -> float:
    from scipy.optimize import brentq

    lo, hi = ALPHA_BRACKET
    if not np.isfinite(target):
        return float("nan")
    if _phi(lo) >= target:
        return lo
    if _phi(hi) <= target:
        return hi
    return float(brentq(lambda a: _phi(a) - target, lo, hi, xtol=1e-14, rtol=1e-14))


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """``(alpha, mean, sigma_l^2, sigma_r^2)`` of an asymmetric generalised Gaussian fitted to ``x`` by moments."""
    from scipy.special import gammaln

    x = x.ravel()
    squares = x * x
    left = x < 0
    n_left = int(np.count_nonzero(left))
    n_right = x.size - n_left
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty side or no spread at all: not a number
        left_sq = float(np.float64(squares[left].sum()) / n_left) if n_left else float("nan")
        right_sq = float(np.float64(squares[~left].sum()) / n_right) if n_right else float("nan")
        r_hat = float(np.abs(x).mean() ** 2 / squares.mean())
        gamma = np.sqrt(np.float64(left_sq)) / np.sqrt(np.float64(right_sq))
        target = float(r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2)
    alpha = _shape(target)
    if not np.isfinite(alpha):
        return float("nan"), float("nan"), left_sq, right_sq
    # (sigma_r - sigma_l) * sqrt(G(1/a) / G(3/a)) * G(2/a) / G(1/a)
    factor = np.exp(0.5 * (gammaln(1 / alpha) - gammaln(3 / alpha)) + gammaln(2 / alpha) - gammaln(1 / alpha))
    mean = (np.sqrt(right_sq) - np.sqrt(left_sq)) * factor
    return alpha, float(mean), left_sq, right_sq


def _scale_features(image: np.ndarray) -> list[float]:
    m = mscn(image)
    alpha, _, left_sq, right_sq = _aggd(m)
    features = [alpha, (left_sq + right_sq) / 2]
    pairs = (
        m[:, :-1] * m[:, 1:],  # horizontal
        m[:-1, :] * m[1:, :],  # vertical
        m[:-1, :-1] * m[1:, 1:],  # main diagonal
        m[1:, :-1] * m[:-1, 1:],  # secondary diagonal
    )
    for pair in pairs:
        features += list(_aggd(pair))
    return features


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of an image (see :func:`grey` for what it may be): 18 at full size, 18 at half size
    (``cv2.resize`` by 0.5, bicubic, of the grey image)."""
    g = grey(image)
    half = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    return np.array(_scale_features(g) + _scale_features(half), np.float64)


@dataclasses.dataclass(frozen=True)
class SvrModel:
    """A libsvm RBF support vector regression: ``decision(x) = sum_i coef_i exp(-gamma |x - sv_i|^2) - rho``."""

    gamma: float
    rho: float
    coef: np.ndarray  # (n,)
    support_vectors: np.ndarray  # (n, d), libsvm's 1-based feature k in column k - 1; absent values are 0

    @classmethod
    def parse(cls, text: str, features: int | None = None) -> SvrModel:
        """A libsvm model file's text (``svm_save_model``: header lines, ``SV``, then one support vector a line)."""
        lines = text.splitlines()
        try:
            start = next(i for i, line in enumerate(lines) if line.strip() == "SV")
        except StopIteration:
            raise ValueError(
                "got no 'SV' line in the libsvm model; expected a file written by svm_save_model"
            ) from None
        header: dict[str, list[str]] = {}
        for line in lines[:start]:
            key, *values = line.split()
            header[key] = values
        svm_type = header.get("svm_type", ["?"])[0]
        kernel = header.get("kernel_type", ["?"])[0]
        if svm_type not in ("epsilon_svr", "nu_svr") or kernel != "rbf":
            raise ValueError(f"got a {svm_type} model with a {kernel} kernel; expected epsilon_svr (or nu_svr), rbf")
        rows = [line.split() for line in lines[start + 1 :] if line.strip()]
        total = int(header["total_sv"][0]) if "total_sv" in header else len(rows)
        if len(rows) != total:
            raise ValueError(f"got {len(rows)} support vectors; expected total_sv {total}")
        entries = [[(int(k), float(v)) for k, v in (pair.split(":") for pair in row[1:])] for row in rows]
        width = max([k for row in entries for k, _ in row], default=0)
        if features is not None:
            if width > features:
                raise ValueError(f"got support vectors with feature index {width}; expected at most {features}")
            width = features
        vectors = np.zeros((len(rows), width), np.float64)
        for i, row in enumerate(entries):
            for k, v in row:
                vectors[i, k - 1] = v
        coef = np.array([float(row[0]) for row in rows], np.float64)
        return cls(float(header["gamma"][0]), float(header["rho"][0]), coef, vectors)

    def decision(self, x: np.ndarray) -> float:
        """The regression value for one ``(d,)`` feature vector."""
        distances = ((self.support_vectors - np.asarray(x, np.float64)) ** 2).sum(axis=1)
        return float(self.coef @ np.exp(-self.gamma * distances) - self.rho)


class _PlainUnpickler(pickle.Unpickler):
    """Loads containers, strings and numbers only: every global (a class, a function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"got a reference to {module}.{name}; expected plain lists and floats only")


def load_scale(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(min_, max_)``, each ``(36,)`` float64, from brisque's ``normalize.pickle`` (read with no global allowed)."""
    content = _PlainUnpickler(io.BytesIO(Path(path).read_bytes())).load()
    if not (isinstance(content, dict) and {"min_", "max_"} <= set(content)):
        raise ValueError(f"got {type(content).__name__} from {path}; expected a dict with min_ and max_")
    low, high = (np.asarray(content[key], np.float64) for key in ("min_", "max_"))
    if low.shape != (FEATURES,) or high.shape != (FEATURES,) or not (high > low).all():
        raise ValueError(f"got min_ {low.shape} and max_ {high.shape} in {path}; expected {FEATURES} each, max > min")
    return low, high


class Brisque:
    """The BRISQUE score of ``(H, W, 3)`` uint8 RGB images: ``scorer(image) -> float`` (``None`` when the image
    cannot be fitted, e.g. one flat colour). Lower is better."""

    def __init__(self, svr: SvrModel, low: np.ndarray, high: np.ndarray) -> None:
        if svr.support_vectors.shape[1] != FEATURES:
            raise ValueError(f"got an SVR over {svr.support_vectors.shape[1]} features; expected {FEATURES}")
        self.svr = svr
        self.low = low
        self.high = high

    @classmethod
    def from_files(cls, files: Mapping[str, str | Path]) -> Brisque:
        """From the model's files by role: ``{"svm": svm.txt, "normalize": normalize.pickle}``."""
        svr = SvrModel.parse(Path(files["svm"]).read_text(encoding="ascii"), FEATURES)
        return cls(svr, *load_scale(files["normalize"]))

    @classmethod
    def from_registry(cls, registry: imgx.Registry, *, pull: bool = True) -> Brisque:
        """The model registered as ``brisque-live`` in ``registry``, its files fetched and verified on first use."""
        from imgx.models import ensure_files, get_spec

        return cls.from_files(ensure_files(get_spec(BRISQUE_MODEL, registry), registry=registry, pull=pull))

    def scaled(self, features: np.ndarray) -> np.ndarray:
        """Features scaled to -1..1 as the SVR was trained on them."""
        return -1 + 2.0 / (self.high - self.low) * (features - self.low)

    def score(self, features: np.ndarray) -> float | None:
        """The score of 36 features (from :func:`brisque_features`); ``None`` if one is not a number."""
        if not np.isfinite(features).all():
            return None
        return self.svr.decision(self.scaled(features))

    def __call__(self, image: np.ndarray) -> float | None:
        return self.score(brisque_features(image))
