"""Catalogs: folders (stable order, SKUs from relative paths, globs) and CSV / JSONL / Parquet manifests."""

from __future__ import annotations

import json
from pathlib import Path

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
