"""Catalogs: folders (stable order, SKUs from relative paths, globs) and CSV / JSONL / Parquet manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imgx import RecipeError
from imgx.io.catalog import glob_to_regex, open_catalog
from imgx.recipe import parse_recipe
from imgx.registry import load_registry


def catalog_for(folder: Path, input_spec: str, *overrides: str):
    text = f"version: 1\nname: c\ninput: {input_spec}\nstages: [{{id: a, uses: color.gamma}}]\n"
    loaded = parse_recipe(text, base_dir=folder, overrides=overrides)
    return open_catalog(loaded, load_registry(), skip_dirs=(folder / "out",))


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("**/*.jpg", ["a.jpg", "x/a.jpg", "x/y/z.JPG"], ["a.png", "a.jpg.txt"]),
        ("shoes/*.jpg", ["shoes/a.jpg"], ["shoes/x/a.jpg", "a.jpg"]),
        ("**/red-?.{jpg,png}", ["red-1.jpg", "s/red-2.png"], ["red-10.jpg", "red-1.gif"]),
        ("[!_]*/*.jpg", ["a/b.jpg"], ["_truth/b.jpg"]),
        ("a/**", ["a/b", "a/b/c.jpg"], ["b/a"]),
    ],
)
def test_glob_translation(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.match(m) for m in matches), [m for m in matches if not regex.match(m)]
    assert not any(regex.match(m) for m in misses), [m for m in misses if regex.match(m)]
    assert not glob_to_regex("*.jpg", case_sensitive=True).match("A.JPG")


def test_folder_skus_are_relative_paths_without_extension_in_stable_order(tmp_path: Path) -> None:
    cat = tmp_path / "catalog"
    touch(
        cat,
        "shoes/red-1.jpg",
        "shoes/blue.JPG",
        "bags/b.png",
        "café/靴.jpg",
        "notes.txt",
        ".hidden/x.jpg",
        "_truth/m.png",
    )
    refs = list(catalog_for(tmp_path, "{path: catalog/, exclude: '_truth/**'}"))
    assert [r.sku for r in refs] == ["bags/b", "café/靴", "shoes/blue", "shoes/red-1"]
    assert refs[3].source == str(cat / "shoes/red-1.jpg") and all(r.error is None for r in refs)
    assert [r.index for r in refs] == [0, 1, 2, 3]
    only_jpg = catalog_for(tmp_path, "{path: catalog/, pattern: 'shoes/*.jpg', case_sensitive: true}")
    assert [r.sku for r in only_jpg] == ["shoes/red-1"]
    assert catalog_for(tmp_path, "{path: catalog/, limit: 2}").count() == 2


def test_the_output_folder_inside_the_catalog_is_never_read(tmp_path: Path) -> None:
    touch(tmp_path, "a.jpg", "out/a/enhanced.jpg", "_imgx/x.jpg")
    text = "version: 1\nname: c\ninput: {path: .}\noutput: {dir: out}\nstages: [{id: a, uses: color.gamma}]\n"
    loaded = parse_recipe(text, base_dir=tmp_path)
    refs = list(open_catalog(loaded, load_registry(), skip_dirs=(tmp_path / "out",)))
    assert [r.sku for r in refs] == ["a"]


def test_same_sku_twice_fails_the_second_item_not_the_run(tmp_path: Path) -> None:
    touch(tmp_path, "catalog/a.jpg", "catalog/a.png")
    refs = list(catalog_for(tmp_path, "{path: catalog/}"))
    assert [r.sku for r in refs] == ["a", "a"]
    assert refs[0].error is None and "duplicate sku" in (refs[1].error or "")


ROWS = [
    {"sku": "A-1", "image": "imgs/a.jpg"},
    {"sku": "B-2", "image": "/abs/b.jpg"},
    {"sku": "C-3", "image": "s3://bucket/c.jpg"},
    {"sku": "", "image": "imgs/d.jpg"},
    {"sku": "E-5", "image": ""},
    {"sku": "A-1", "image": "imgs/a2.jpg"},
]


def write_manifest(path: Path, rows: list[dict[str, str]], sku: str = "sku", image: str = "image") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    renamed = [{sku: r["sku"], image: r["image"]} for r in rows]
    if path.suffix == ".csv":
        lines = [f"{sku},{image},extra"] + [f"{r[sku]},{r[image]},x" for r in renamed]
        path.write_text("\n".join(lines) + "\n")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in renamed))
    else:
        pq.write_table(pa.Table.from_pylist(renamed), path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_manifests_resolve_paths_and_turn_bad_rows_into_failed_items(tmp_path: Path, suffix: str) -> None:
    manifest = tmp_path / "m" / f"list{suffix}"
    write_manifest(manifest, ROWS, sku="product_id", image="photo")
    refs = list(catalog_for(tmp_path, f"{{path: m/list{suffix}, sku_column: product_id, image_column: photo}}"))
    assert [r.sku for r in refs] == ["A-1", "B-2", "C-3", "<row 4>", "E-5", "A-1"]
    assert refs[0].source == str(manifest.parent / "imgs/a.jpg")
    assert refs[1].source == "/abs/b.jpg" and refs[2].source == "s3://bucket/c.jpg"
    assert [r.error is None for r in refs] == [True, True, True, False, False, False]
    assert "empty sku" in refs[3].error and "empty image" in refs[4].error and "duplicate" in refs[5].error


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_missing_column_is_a_recipe_error_listing_the_columns(tmp_path: Path, suffix: str) -> None:
    write_manifest(tmp_path / f"list{suffix}", ROWS)
    catalog = catalog_for(tmp_path, f"{{path: list{suffix}, sku_column: SKU}}")
    with pytest.raises(RecipeError, match=r"no column 'SKU'.*'sku'.*input.sku_column"):
        list(catalog)


def test_a_broken_jsonl_line_fails_that_item_only(tmp_path: Path) -> None:
    (tmp_path / "l.jsonl").write_text('{"sku": "a", "image": "a.jpg"}\n{oops\n[1]\n{"sku": "b", "image": "b.jpg"}\n')
    refs = list(catalog_for(tmp_path, "{path: l.jsonl}"))
    assert [r.error is None for r in refs] == [True, False, False, True]
    assert "manifest row 2 is not valid JSON" in refs[1].error and "numbered from 1" in refs[1].error


def test_unknown_inputs_are_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such folder or file"):
        catalog_for(tmp_path, "{path: nowhere/}")
    (tmp_path / "list.xlsx").write_bytes(b"x")
    with pytest.raises(RecipeError, match=r"\.csv.*\.jsonl.*\.parquet"):
        catalog_for(tmp_path, "{path: list.xlsx}")


# -- the columnar catalog: numbering, first-wins dedupe, counting, hashing -------------------------------------------

DUPES = [
    {"sku": "S-1", "image": "a.jpg"},  # row 1: wins
    {"sku": "S-2", "image": "b.jpg"},
    {"sku": " S-1 ", "image": "c.jpg"},  # row 3: same SKU once trimmed
    {"sku": "", "image": "d.jpg"},  # row 4: empty sku
    {"sku": "S-5", "image": " "},  # row 5: blank image cell
    {"sku": "S-2", "image": "e.jpg"},  # row 6
    {"sku": "S-1", "image": "f.jpg"},  # row 7
    {"sku": "S-8", "image": "g.jpg"},
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("batch_rows", [2, 65_536])
def test_the_first_row_of_a_sku_wins_and_every_error_names_its_row(
    tmp_path: Path, suffix: str, batch_rows: int
) -> None:
    write_manifest(tmp_path / f"m{suffix}", DUPES)
    catalog = catalog_for(tmp_path, f"{{path: m{suffix}}}")
    catalog.batch_rows = batch_rows  # duplicates across batch boundaries too
    refs = list(catalog)
    assert [r.index for r in refs] == list(range(8))
    assert [r.error is None for r in refs] == [True, True, False, False, False, False, False, True]
    assert refs[0].source == str(tmp_path / "a.jpg")
    assert refs[2].sku == "S-1" and refs[2].error.startswith(
        "duplicate sku: manifest row 3 has the same sku as manifest row 1"
    )
    assert "manifest row 6 has the same sku as manifest row 2" in refs[5].error
    assert "manifest row 7 has the same sku as manifest row 1" in refs[6].error
    assert refs[3].sku == "<row 4>" and "manifest row 4 has an empty sku" in refs[3].error
    assert "manifest row 5 has an empty image path" in refs[4].error
    assert all("numbered from 1" in r.error for r in refs if r.error)  # every message says how rows are numbered
    scan = catalog.scan()
    assert scan.items == 8
    found = scan.duplicates.select(["dup_sku", "first_row"]).to_pydict().values()
    assert sorted(zip(*found, strict=True)) == [("S-1", 1), ("S-2", 2)]


def test_csv_rows_count_from_the_row_after_the_header(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("\ufeffsku,image\nA,a.jpg\nB,b.jpg\nA,c.jpg\n", encoding="utf-8")
    refs = list(catalog_for(tmp_path, "{path: m.csv}"))
    assert "manifest row 3 has the same sku as manifest row 1" in refs[2].error
    assert "the row after the header" in refs[2].error


def test_jsonl_rows_are_lines_even_around_blank_and_broken_lines(tmp_path: Path) -> None:
    lines = ['{"sku": "A", "image": "a.jpg"}', "", '{"sku": 7, "image": "b.jpg"}', '{"sku": "A", "image": "c.jpg"}']
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    refs = list(catalog_for(tmp_path, "{path: m.jsonl}"))
    assert [r.sku for r in refs] == ["A", "7", "A"]
    assert "manifest row 4 has the same sku as manifest row 1" in refs[2].error


def test_count_reads_no_image_and_counts_bad_and_duplicate_rows(tmp_path: Path) -> None:
    rows = [{"sku": f"S{i % 700}", "image": f"missing/{i}.jpg"} for i in range(1000)]  # no file exists
    write_manifest(tmp_path / "m.csv", rows)
    catalog = catalog_for(tmp_path, "{path: m.csv}")
    assert catalog.count() == 1000
    assert catalog_for(tmp_path, "{path: m.csv, limit: 10}").count() == 10
    scan = catalog.scan()
    assert scan.items == 1000 and scan.duplicates.num_rows == 300  # S0..S299 appear twice
    import imgx.io.catalog as module

    default = module.DEDUPE_PASS_ROWS
    module.DEDUPE_PASS_ROWS = 70  # 15 parts, hashed one pass each, as a catalog of more than 2^23 rows is
    try:
        assert catalog.scan().duplicates.equals(scan.duplicates)
    finally:
        module.DEDUPE_PASS_ROWS = default
    failed = [r for r in catalog if r.error]
    assert len(failed) == 300 and all(r.index >= 700 for r in failed)
    touch(tmp_path, "f/a.jpg", "f/b/c.png", "f/b/d.txt")  # "images" that are not images: never opened
    assert catalog_for(tmp_path, "{path: f, pattern: '**/*.{jpg,png}'}").count() == 2


def test_sku_hashes_are_equal_for_equal_text_wherever_the_array_starts() -> None:
    from imgx.io.catalog import sku_hashes

    values = pa.array(["", "a", "ab", "ba", "ünï", None, "a" * 300, "ab"])
    full = sku_hashes(values)
    assert full[2] == full[7] and full[1] != full[2] != full[3]
    assert list(sku_hashes(values.slice(2, 4))) == list(full[2:6])
    assert len(set(sku_hashes(values, seed=1).tolist())) == 6  # null hashes like ""; "ab" twice
    many = sku_hashes(pa.array([f"SKU-{i:09d}" for i in range(200_000)]))
    assert len(set(many.tolist())) == 200_000


def test_the_hash_pair_and_the_sorted_lookup_agree_with_their_plain_forms() -> None:
    from imgx.io.catalog import sku_hash_pair, sku_hashes, sorted_positions

    values = pa.array(["", "a", "ünï", None, "a" * 300, *(f"SKU-{i:09d}" for i in range(5000))])
    first, second = sku_hash_pair(values.slice(1))
    assert list(first) == list(sku_hashes(values.slice(1))) and list(second) == list(sku_hashes(values, seed=1)[1:])
    keys = np.unique(sku_hashes(values))
    rng = np.random.default_rng(0)
    for size in (10, 5000):  # below and above the size where the values are sorted first
        probe = np.concatenate([rng.choice(keys, size // 2), rng.integers(0, 2**64, size // 2, dtype=np.uint64)])
        expected = np.searchsorted(keys, probe).clip(0, len(keys) - 1)
        assert (sorted_positions(keys, probe) == expected).all()
        assert (keys[sorted_positions(keys, probe)] == probe).sum() == size // 2


def test_a_quoted_csv_cell_may_span_lines(tmp_path) -> None:
    """Legal CSV: a cell in quotes holds a line break (a product title pasted from a spreadsheet); rows keep their
    data-row numbers."""
    from imgx.recipe import parse_recipe
    from imgx.registry import load_registry

    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "m.csv").write_text('sku,title,image\nA1,"two\nlines",a.png\n,"x",a.png\n')
    loaded = parse_recipe(
        "version: 1\nname: m\ninput: {path: m.csv}\nstages: [{id: a, uses: color.enhance}]\n", base_dir=tmp_path
    )
    refs = list(open_catalog(loaded, load_registry()))
    assert (refs[0].sku, refs[0].error) == ("A1", None)
    assert "manifest row 2 has an empty sku" in refs[1].error


def test_a_folder_is_walked_once_and_every_pass_sees_that_walk(tmp_path: Path) -> None:
    """left_out, count, the duplicate scan and the items all read the first complete walk: a file that appears during
    the run changes none of them (and an object store is listed once); a new catalog sees it."""
    import gc

    from imgx.io.leftout import FolderListing

    touch(tmp_path, "f/a.jpg", "f/b/c.png", "f/notes.txt")
    catalog = catalog_for(tmp_path, "{path: f}")
    assert catalog.left_out().total == 1  # the first walk: notes.txt
    touch(tmp_path, "f/d.jpg", "f/more.txt")
    assert catalog.count() == 2 and catalog.scan().items == 2 and [r.sku for r in catalog] == ["a", "b/c"]
    assert catalog.left_out().total == 1
    assert catalog_for(tmp_path, "{path: f}").count() == 3
    limited = catalog_for(tmp_path, "{path: f, limit: 1}")  # a walk stopped early keeps nothing
    assert limited.count() == 1 and [r.sku for r in limited] == ["a"]

    listing = FolderListing(tmp_path / "f")
    assert list(listing.names()) == ["a.jpg", "b/c.png", "d.jpg", "more.txt", "notes.txt"]
    kept = listing._kept
    assert kept is not None and Path(kept).is_file()
    listing.close()
    assert not Path(kept).parent.exists() and len(list(listing.names())) == 5
    kept = listing._kept
    del listing
    gc.collect()
    assert not Path(kept).parent.exists(), "the temp listing outlived its catalog"
