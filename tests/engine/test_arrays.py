"""imgx.arrays, the toolkit every stage uses: checks, uint8 <-> float (one rounding rule), resize, the "over"
blend, working size and padding. Per function: smoke, odd sizes, dtype, edge values, errors and their messages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import imgx.runtime
from _support import frozen, load_rgba_pack, real_photo
from imgx.arrays import (
    INTERPOLATIONS,
    STRIP_ROWS,
    by_row_strips,
    check_alpha,
    check_rgb,
    flatten_alpha,
    pad_min,
    resize_plane,
    to_float,
    to_uint8,
    working_size,
)

ODD_SHAPES = [(1, 1), (1, 7), (7, 1), (3, 5), (17, 31)]


# --- check_rgb / check_alpha -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_check_rgb_accepts_any_rgb_size_and_read_only_arrays(shape) -> None:
    check_rgb(np.zeros((*shape, 3), np.uint8))
    check_rgb(frozen(real_photo("coffee", 33)), "coffee")


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (np.zeros((4, 4, 3), np.float32), r"got float32 \(4, 4, 3\) for image"),
        (np.zeros((4, 4), np.uint8), r"got uint8 \(4, 4\) for image"),
        (np.zeros((4, 4, 4), np.uint8), r"got uint8 \(4, 4, 4\) for image"),
        (np.zeros((0, 4, 3), np.uint8), r"got uint8 \(0, 4, 3\) for image"),
        ([[[0, 0, 0]]], r"got list for image"),
    ],
)
def test_check_rgb_says_what_it_got_and_what_it_expects(value, got) -> None:
    with pytest.raises(ValueError, match=got + r"; expected a non-empty \(H, W, 3\) uint8 RGB array$"):
        check_rgb(value)


def test_check_rgb_names_the_array_and_may_allow_empty_images() -> None:
    with pytest.raises(ValueError, match=r"^got uint16 \(2, 2, 3\) for background; expected"):
        check_rgb(np.zeros((2, 2, 3), np.uint16), "background")
    check_rgb(np.zeros((0, 5, 3), np.uint8), allow_empty=True)
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB array$"):
        check_rgb(np.zeros((0, 5), np.uint8), allow_empty=True)


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_check_alpha_accepts_a_plane_of_the_image_shape(shape) -> None:
    check_alpha(np.zeros(shape, np.uint8), (*shape, 3))
    check_alpha(np.zeros(shape, np.uint8), shape)


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (np.zeros((4, 5), np.uint8), r"uint8 \(4, 5\)"),
        (np.zeros((5, 4), np.float32), r"float32 \(5, 4\)"),
        (np.zeros((5, 4, 1), np.uint8), r"uint8 \(5, 4, 1\)"),
        (None, "NoneType"),
    ],
)
def test_check_alpha_says_what_it_got_and_what_it_expects(value, got) -> None:
    with pytest.raises(ValueError, match=rf"^got {got} for mask; expected an \(5, 4\) uint8 array$"):
        check_alpha(value, (5, 4, 3), "mask")


# --- to_float / to_uint8 -----------------------------------------------------------------------------------------


def test_float_and_back_is_lossless_and_rounding_is_half_up_after_clipping() -> None:
    image = real_photo("coffee", 64)
    x = to_float(image)
    assert x.dtype == np.float32 and x.shape == image.shape and float(x.max()) <= 1.0
    assert np.array_equal(to_uint8(x), image)
    y = np.array([[[-0.1, 0.5 / 255, 127.5 / 255], [254.49 / 255, 1.0, 1.3]]], np.float32)
    assert to_uint8(y).tolist() == [[[0, 1, 128], [254, 255, 255]]]


def test_every_code_round_trips_and_half_codes_round_up() -> None:
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(to_uint8(to_float(codes)), codes)
    # k + 0.5 (exact in float32 after * 255 for these) goes up, as PIL and torchvision round; half to even would not
    halves = (np.arange(255, dtype=np.float64) + 0.5) / 255
    assert np.array_equal(to_uint8(halves), np.arange(1, 256))
    just_below = (np.arange(255, dtype=np.float64) + 0.499) / 255
    assert np.array_equal(to_uint8(just_below), np.arange(255))
    assert to_uint8(np.array([0.0, 1.0, -np.inf, np.inf])).tolist() == [0, 255, 0, 255]


@pytest.mark.parametrize("shape", [(1,), (3, 5), (1, 1, 3), (17, 31, 3), (2, 3, 4, 1)])
def test_conversions_keep_any_shape(shape) -> None:
    x = np.linspace(0.0, 1.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    assert to_uint8(x).shape == shape and to_uint8(x).dtype == np.uint8
    assert to_float(to_uint8(x)).shape == shape and to_float(to_uint8(x)).dtype == np.float32


def test_to_uint8_takes_float64_and_does_not_modify_its_input() -> None:
    x = np.array([0.25, 1.5, -1.0], np.float64)
    assert to_uint8(x).tolist() == [64, 255, 0]
    assert x.tolist() == [0.25, 1.5, -1.0]


def test_the_runtime_re_exports_the_toolkit_conversions() -> None:
    assert imgx.runtime.to_uint8 is to_uint8 and imgx.runtime.to_float is to_float
    assert imgx.runtime.working_size is working_size and imgx.runtime.pad_min is pad_min


# --- resize_plane ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (31, 17), (200, 150)])
def test_resize_plane_gives_the_size_asked_for_rgb_and_alpha(interpolation, size) -> None:
    image = frozen(real_photo("astronaut", 64))
    alpha = frozen(image[..., 0].copy())
    out = resize_plane(image, size, interpolation)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    assert resize_plane(alpha, size, interpolation).shape == (size[1], size[0])


def test_resize_plane_returns_the_input_for_its_own_size_and_keeps_float32() -> None:
    image = real_photo("coffee", 40)
    assert resize_plane(image, (image.shape[1], image.shape[0]), "lanczos") is image
    x = to_float(image)
    out = resize_plane(x, (20, 10), "linear")
    assert out.dtype == np.float32 and out.shape == (10, 20, 3)


def test_resize_plane_auto_averages_when_shrinking_and_is_cubic_when_growing() -> None:
    image = real_photo("chelsea", 64)
    w, h = image.shape[1], image.shape[0]
    assert np.array_equal(resize_plane(image, (w // 2, h // 2)), resize_plane(image, (w // 2, h // 2), "area"))
    assert np.array_equal(resize_plane(image, (2 * w, 2 * h)), resize_plane(image, (2 * w, 2 * h), "cubic"))
    grows_one_way = (w + 3, h // 2)
    assert np.array_equal(resize_plane(image, grows_one_way), resize_plane(image, grows_one_way, "cubic"))
    # area halving is the mean of each 2 x 2 block, rounded
    blocks = image[: h // 2 * 2, : w // 2 * 2].astype(np.float64).reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    halved = resize_plane(image[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), "area")
    assert np.abs(halved - blocks).max() <= 0.5 + 1e-9


def test_resize_plane_keeps_flat_images_flat_with_every_interpolation() -> None:
    flat = np.full((9, 13, 3), (10, 200, 255), np.uint8)
    for interpolation in INTERPOLATIONS:
        assert (resize_plane(flat, (30, 4), interpolation) == (10, 200, 255)).all(), interpolation


def test_resize_plane_errors_name_the_argument() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^got \(0, 3\) for size; expected \(width, height\), both at least 1$"):
        resize_plane(image, (0, 3), "area")
    with pytest.raises(ValueError, match=r"^got 'bicubic' for interpolation; expected one of auto, area, linear"):
        resize_plane(image, (3, 3), "bicubic")


# --- flatten_alpha -----------------------------------------------------------------------------------------------


def _over_by_hand(image: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """``(rgb * a + bg * (255 - a)) / 255`` in float64, rounded to nearest (no ties can occur)."""
    a = alpha.astype(np.float64)[:, :, None] / 255.0
    return np.floor(image * a + np.asarray(background, np.float64) * (1.0 - a) + 0.5).astype(np.uint8)


def test_flatten_alpha_of_a_real_matte_over_a_colour_equals_the_hand_computation() -> None:
    rgb, alpha = load_rgba_pack()  # matplotlib's gift pack: a real soft-edged matte
    assert 0 < (alpha % 255).astype(bool).mean() < 1  # it has partly transparent pixels
    for color in [(255, 255, 255), (0, 0, 0), (240, 128, 7)]:
        np.testing.assert_array_equal(flatten_alpha(rgb, alpha, color), _over_by_hand(rgb, alpha, color))


def test_flatten_alpha_of_a_product_over_a_photo_equals_the_hand_computation() -> None:
    rgb, alpha = load_rgba_pack()
    coffee = np.ascontiguousarray(real_photo("coffee", 400)[: rgb.shape[0], : rgb.shape[1]])  # skimage's coffee
    out = flatten_alpha(frozen(rgb), frozen(alpha), frozen(coffee))
    np.testing.assert_array_equal(out, _over_by_hand(rgb, alpha, coffee))
    assert np.array_equal(out[alpha == 255], rgb[alpha == 255]) and np.array_equal(out[alpha == 0], coffee[alpha == 0])


def test_flatten_alpha_is_exact_for_every_code_and_alpha() -> None:
    codes = np.arange(256, dtype=np.uint8)
    image = np.repeat(codes, 256)[None, :, None].repeat(3, axis=2)  # (1, 65536, 3): every code x every alpha
    alpha = np.tile(codes, 256)[None, :]
    for background in [(0, 1, 2), (127, 128, 129), (253, 254, 255)]:
        exact = (image.astype(np.int64) * alpha[..., None] + np.asarray(background) * (255 - alpha[..., None])) / 255
        np.testing.assert_array_equal(flatten_alpha(image, alpha, background), np.floor(exact + 0.5))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (17, 31)])
def test_flatten_alpha_takes_odd_sizes_and_an_empty_image(shape) -> None:
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, shape, dtype=np.uint8)
    out = flatten_alpha(image, alpha, (9, 99, 199))
    assert out.shape == (*shape, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, _over_by_hand(image, alpha, (9, 99, 199)))
    empty = flatten_alpha(np.zeros((0, 3, 3), np.uint8), np.zeros((0, 3), np.uint8), (1, 2, 3))
    assert empty.shape == (0, 3, 3)


def test_flatten_alpha_errors_say_what_is_wrong() -> None:
    image, alpha = np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint8)
    with pytest.raises(ValueError, match=r"^got uint8 \(5, 4\) for alpha; expected an \(4, 5\) uint8 array$"):
        flatten_alpha(image, alpha.T, (0, 0, 0))
    with pytest.raises(ValueError, match=r"^got \(4, 4, 3\) for background; expected the image's shape \(4, 5, 3\)"):
        flatten_alpha(image, alpha, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"^got \(0, 0, 256\) for background; expected an \(r, g, b\) colour"):
        flatten_alpha(image, alpha, (0, 0, 256))
    with pytest.raises(ValueError, match=r"^got float32 \(4, 5, 3\) for image; expected an \(H, W, 3\) uint8 RGB"):
        flatten_alpha(image.astype(np.float32), alpha, (0, 0, 0))


# --- working_size / pad_min --------------------------------------------------------------------------------------


def test_working_size_scales_only_the_images_over_max_side() -> None:
    assert working_size(400, 600, None) == working_size(400, 600, 600) == (400, 600)
    assert working_size(1500, 3000, 1024) == (512, 1024)
    assert working_size(5000, 3, 1024) == (1024, 1)
    assert working_size(1, 1, 1) == (1, 1)


def test_pad_min_mirrors_up_to_the_minimum_and_leaves_large_images_alone() -> None:
    photo = to_float(real_photo("astronaut", 48))
    assert pad_min(photo, 32) is photo
    tiny = photo[:5, :3]
    padded = pad_min(tiny, 32)
    assert padded.shape == (32, 32, 3) and padded.dtype == np.float32 and np.array_equal(padded[:5, :3], tiny)
    assert np.array_equal(padded[5, :3], tiny[3])  # mirrored, not repeated
    dot = pad_min(photo[:1, :1], 4)
    assert dot.shape == (4, 4, 3) and (dot == photo[0, 0]).all()
    assert pad_min(real_photo("coffee", 16)[:1, :7], 8).shape == (8, 8, 3)  # uint8 and a 1-pixel side


def test_apply_scope_keeps_the_product_or_the_scene() -> None:
    """On matplotlib's RGBA gift pack (a real product with its own mask): an edit scoped to the background leaves the
    product's colours (CIEDE2000 under 1 away from the feathered edge) and moves the background; ``product`` is the
    reverse; ``all`` is the edit itself."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    from imgx.arrays import apply_scope

    rgb, alpha = load_rgba_pack()
    edited = (255 - rgb).astype(np.uint8)  # a drastic edit everywhere
    inner = cv2.erode((alpha >= 250).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    outer = cv2.erode((alpha <= 5).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)

    def delta(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
        return float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))[where].mean())

    background = apply_scope(edited, rgb, alpha, "background", 2.0)
    assert delta(background, rgb, inner) < 1.0 and delta(background, rgb, outer) > 10.0
    product = apply_scope(edited, rgb, alpha, "product", 2.0)
    assert delta(product, rgb, outer) < 1.0 and delta(product, rgb, inner) > 10.0
    assert apply_scope(edited, rgb, None, "all", 2.0) is edited
    with pytest.raises(ValueError, match="expected a product mask"):
        apply_scope(edited, rgb, None, "background", 2.0)


@pytest.mark.parametrize("scope", ["background", "product"])
def test_apply_scope_mixes_a_strip_at_a_time_with_the_whole_images_pixels(scope: str) -> None:
    """The mix of a photo and its edit goes through row strips: the same bytes as the whole-image formula, while the
    float32 copies (about 600 MB for a 12 MP photo, which made audience-variants peak at 3.3 GB per worker) exist a
    strip at a time."""
    import tracemalloc

    from imgx.arrays import apply_scope, feathered_mask

    rgb, alpha = load_rgba_pack()
    size = (rgb.shape[1] * 6, rgb.shape[0] * 6)  # several strips tall
    rgb, alpha = cv2.resize(rgb, size), cv2.resize(alpha, size)
    edited = cv2.GaussianBlur(255 - rgb, (0, 0), 2.0)
    tracemalloc.start()
    try:
        keep = feathered_mask(alpha, 4.0)
        keep = keep if scope == "background" else 1.0 - keep
        whole = rgb.astype(np.float32) * keep[..., None] + edited.astype(np.float32) * (1.0 - keep[..., None]) + 0.5
        whole = whole.astype(np.uint8)
        whole_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        strips = apply_scope(edited, rgb, alpha, scope, 4.0)
        strips_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rgb.shape[0] > 2 * STRIP_ROWS and np.array_equal(strips, whole)
    # the feathered mask (float32) is still whole; the three-channel float32 copies are not (whole, the peak is the
    # formula's and more)
    assert strips_peak < 0.75 * whole_peak, (strips_peak, whole_peak)


def test_row_strips_equal_one_call_for_operations_within_their_reach() -> None:
    """A neighbourhood operation (a Gaussian blur reading 7 rows each side, a per-pixel float map) on a photo several
    strips tall: the strips give exactly the one-call result, at the image's borders too; heights must agree."""
    image = np.ascontiguousarray(np.rot90(real_photo("coffee", 3 * STRIP_ROWS + 17)))
    weights = np.linspace(0.0, 1.0, image.shape[0], dtype=np.float32)[:, None].repeat(image.shape[1], 1)

    def blur(rows: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(rows, (15, 15), 0)

    def weigh(rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        return rows.astype(np.float32) * w[:, :, None]

    assert np.array_equal(by_row_strips(blur, image, reach=7), blur(image))
    assert not np.array_equal(by_row_strips(blur, image, reach=2), blur(image))  # a reach too short shows
    strips = by_row_strips(weigh, image, weights)
    assert strips.dtype == np.float32 and np.array_equal(strips, weigh(image, weights))
    small = image[:40]
    assert np.array_equal(by_row_strips(blur, small, reach=7, rows=8), blur(small))
    with pytest.raises(ValueError, match=r"got heights \[.*\] for by_row_strips; expected one height"):
        by_row_strips(weigh, image, weights[:-1])
    with pytest.raises(ValueError, match=r"for a strip of \d+; expected \d+"):
        by_row_strips(lambda rows: rows[:-1], image)
    with pytest.raises(ValueError, match=r"scale=0 .*expected reach >= 0, rows >= 1 and scale >= 1"):
        by_row_strips(blur, image, scale=0)


def test_row_strips_of_an_upsampler_equal_one_call() -> None:
    """An operation that enlarges 3x and then reads its neighbours (nearest upsampling, then a 7-row blur at the large
    size, so 3 input rows of reach): strips give the one-call result, and a reach too short shows."""
    image = real_photo("astronaut", 2 * STRIP_ROWS + 29)

    def enlarge_and_blur(rows: np.ndarray) -> np.ndarray:
        large = cv2.resize(rows, (3 * rows.shape[1], 3 * rows.shape[0]), interpolation=cv2.INTER_NEAREST)
        return cv2.GaussianBlur(large, (15, 15), 0)

    whole = enlarge_and_blur(image)
    strips = by_row_strips(enlarge_and_blur, image, reach=3, rows=40, scale=3)
    assert strips.shape == whole.shape == (3 * image.shape[0], 3 * image.shape[1], 3)
    assert np.array_equal(strips, whole)
    assert not np.array_equal(by_row_strips(enlarge_and_blur, image, reach=1, rows=40, scale=3), whole)
    with pytest.raises(ValueError, match=r"expected \d+"):
        by_row_strips(enlarge_and_blur, image, reach=3, rows=40)  # the scale not said
