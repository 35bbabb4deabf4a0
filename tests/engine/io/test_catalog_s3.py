"""Catalogs in an object store: a prefix listed as a folder, CSV / JSONL / Parquet manifests read through
``pyarrow.fs``, and one clear error naming ``input.path`` when the bucket, the object or the credentials are wrong.

Everything runs against moto's S3 server on loopback (``tests/_s3.py``); no request is mocked. The catalog never
decodes an image, so objects hold a few bytes each (their key), enough to check that a source reads back whole.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _s3 import MotoS3
from imgx import RecipeError
from imgx.cli import app
from imgx.io import fs
from imgx.io.catalog import open_catalog
from imgx.recipe import parse_recipe
from imgx.registry import load_registry

# A folder catalog as a tree of relative paths: nested folders, names that sort between folders, case, non-ASCII,
# characters a URI must escape, and what the walk skips (hidden, run state, the output folder, an exclude).
TREE = [
    "a/x.jpg",
    "b.jpg",
    "bags/b.png",
    "café/靴.jpg",
    "deep/er/still/z.webp",
    "hash #1.jpg",
    "100%.png",
    "notes.txt",
    "shoes/blue.JPG",
    "shoes/red-1.jpg",
    "shoes/sub/red-2.jpg",
    ".hidden/x.jpg",
    "._resource.jpg",
    "_imgx/state.jpg",
    "shoes/_imgx/y.jpg",
    "_truth/m.png",
    "out/a/enhanced.jpg",
    "outside.jpg",
]


def recipe_for(base_dir: Path, input_spec: str, *overrides: str):
    text = f"version: 1\nname: c\ninput: {input_spec}\nstages: [{{id: a, uses: color.gamma}}]\n"
    return parse_recipe(text, base_dir=base_dir, overrides=overrides)


def catalog_for(base_dir: Path, input_spec: str, *, skip: tuple[str | Path, ...] = ()):
    return open_catalog(recipe_for(base_dir, input_spec), load_registry(), skip_dirs=skip)


def put(server: MotoS3, bucket: str, key: str, body: bytes | None = None) -> None:
    server.client().put_object(Bucket=bucket, Key=key, Body=key.encode() if body is None else body)


def write_tree(server: MotoS3, bucket: str, prefix: str, local: Path) -> None:
    for name in TREE:
        put(server, bucket, f"{prefix}/{name}")
        path = local / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())


def listing(catalog, root: str) -> list[tuple[int, str, str, str | None]]:
    """(row, sku, source relative to root, error) per item."""
    rows = []
    for ref in catalog:
        assert ref.source.startswith(root + "/"), (ref.source, root)
        rows.append((ref.index + 1, ref.sku, ref.source[len(root) + 1 :], ref.error))
    return rows


# -- folders ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "input_spec",
    [
        "{{path: {root}, exclude: '_truth/**'}}",
        "{{path: '{root}/', pattern: 'shoes/**/*.jpg', case_sensitive: true}}",
        "{{path: {root}, pattern: ['**/*.{{jpg,png}}', '*.txt'], exclude: ['_truth/**', 'café/**']}}",
        "{{path: {root}, limit: 4}}",
    ],
)
def test_a_prefix_is_the_same_folder_catalog_as_the_same_tree_on_disk(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path, input_spec: str
) -> None:
    local = tmp_path / "photos"
    write_tree(s3_server, s3_bucket, "photos", local)
    put(s3_server, s3_bucket, "photos-sibling/not-mine.jpg")  # shares the prefix's text, not its folder
    uri = f"s3://{s3_bucket}/photos"

    on_disk = catalog_for(tmp_path, input_spec.format(root=local), skip=(local / "out",))
    in_bucket = catalog_for(tmp_path, input_spec.format(root=uri), skip=(f"{uri}/out/",))

    assert (in_bucket.kind, in_bucket.root) == ("folder", uri)
    expected = listing(on_disk, str(local))
    assert expected and all(error is None for *_, error in expected)
    escaped = [(row, sku, path.replace("%", "%25").replace("#", "%23"), error) for row, sku, path, error in expected]
    assert listing(in_bucket, uri) == escaped
    assert in_bucket.count() == on_disk.count() == len(expected)
    assert in_bucket.left_out() == on_disk.left_out()
    for ref in in_bucket:  # every source names its object: read back through the one file-system layer
        assert fs.read_bytes(ref.source) == f"photos/{urllib.parse.unquote(ref.source[len(uri) + 1 :])}".encode()


def test_the_folder_walk_interleaves_folders_by_name_and_skips_run_state(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    write_tree(s3_server, s3_bucket, "photos", tmp_path / "photos")
    uri = f"s3://{s3_bucket}/photos"
    refs = list(catalog_for(tmp_path, f"{{path: {uri}, exclude: '_truth/**'}}", skip=(f"{uri}/out",)))
    assert [r.sku for r in refs] == [
        "100%",
        "a/x",  # a folder is walked where its name sorts, before b.jpg
        "b",
        "bags/b",
        "café/靴",
        "deep/er/still/z",
        "hash #1",
        "outside",
        "shoes/blue",
        "shoes/red-1",
        "shoes/sub/red-2",
    ]
    assert [r.index for r in refs] == list(range(len(refs)))
    assert refs[6].source == f"{uri}/hash %231.jpg" and refs[0].source == f"{uri}/100%25.png"
    # without skip_dirs the output folder is an ordinary folder; a skip that names another prefix skips nothing
    unskipped = catalog_for(tmp_path, f"{{path: {uri}}}", skip=(f"s3://{s3_bucket}/elsewhere/out",))
    assert "out/a/enhanced" in [r.sku for r in unskipped]
    whole_bucket = catalog_for(
        tmp_path, f"{{path: 's3://{s3_bucket}', pattern: 'photos/shoes/*.jpg', case_sensitive: true}}"
    )
    assert [r.source for r in whole_bucket] == [f"{uri}/shoes/red-1.jpg"]


def test_a_prefix_is_listed_once_per_catalog(s3_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    """The run's passes read the first listing: an object put after it is not in the count, the scan or the items (a
    LIST request per 1,000 keys is paid once); a new catalog lists it."""
    for key in ("shop/a.jpg", "shop/b/c.png", "shop/readme.md"):
        put(s3_server, s3_bucket, key)
    uri = f"s3://{s3_bucket}/shop"
    catalog = catalog_for(tmp_path, f"{{path: '{uri}'}}")
    assert catalog.left_out().by_extension == {".md": 1}
    put(s3_server, s3_bucket, "shop/d.jpg")
    assert catalog.count() == 2 and catalog.scan().items == 2
    assert [r.source for r in catalog] == [f"{uri}/a.jpg", f"{uri}/b/c.png"]
    assert catalog_for(tmp_path, f"{{path: '{uri}'}}").count() == 3


def test_left_out_counts_a_prefix_as_it_counts_a_folder(s3_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    write_tree(s3_server, s3_bucket, "photos", tmp_path / "photos")
    uri = f"s3://{s3_bucket}/photos"
    catalog = catalog_for(
        tmp_path, f"{{path: {uri}, pattern: '**/*.jpg', exclude: 'shoes/sub/**'}}", skip=(f"{uri}/out",)
    )
    found = catalog.left_out()
    assert found.by_extension == {".png": 3, ".webp": 1, ".txt": 1}  # shoes/blue.JPG is taken: globs ignore case
    assert found.excluded == 1 and found.images == 4  # shoes/sub/red-2.jpg; out/ and _imgx/ are never walked
    assert found.examples == ["100%.png", "_truth/m.png", "bags/b.png", "deep/er/still/z.webp", "notes.txt"]
    assert "input.pattern left out 5 file(s) of the folder" in found.describe()


# -- manifests -------------------------------------------------------------------------------------------------------

ROWS = [
    ("A-1", "img/a.jpg"),  # row 1: next to the manifest
    ("B-2", "./img/b.jpg"),
    ("C-3", "s3://other-bucket/c.jpg"),  # a URI stays as it is
    ("D-4", "/abs/d.jpg"),  # so does an absolute local path
    ("E-5", "../up/e.jpg"),  # would leave the manifest's prefix
    ("F-6", "img/../../f.jpg"),
    ("", "img/g.jpg"),  # empty sku
    ("E-5", "img/e.jpg"),  # the same sku as row 5, which failed: this one is processed
    ("H-9", "img/h #9.jpg"),
    ("A-1", "img/a2.jpg"),  # a duplicate of row 1
]


def manifest_bytes(suffix: str, rows: list[tuple[str, str]]) -> bytes:
    if suffix == ".csv":
        return ("sku,image,note\n" + "".join(f'{s},{i},"n"\n' for s, i in rows)).encode()
    if suffix == ".jsonl":
        return "".join(json.dumps({"sku": s, "image": i}) + "\n" for s, i in rows).encode()
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"sku": [s for s, _ in rows], "image": [i for _, i in rows]}), sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_manifests_in_a_bucket_resolve_cells_against_their_prefix(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path, suffix: str
) -> None:
    put(s3_server, s3_bucket, f"cat/lists/m{suffix}", manifest_bytes(suffix, ROWS))
    uri = f"s3://{s3_bucket}/cat/lists/m{suffix}"
    catalog = catalog_for(tmp_path, f"{{path: {uri}}}")
    assert (catalog.kind, catalog.root) == ("manifest", uri)
    refs = list(catalog)
    base = f"s3://{s3_bucket}/cat/lists"
    assert [r.index + 1 for r in refs] == list(range(1, 11))
    assert [r.source for r in refs[:4]] == [f"{base}/img/a.jpg", f"{base}/img/b.jpg", ROWS[2][1], ROWS[3][1]]
    assert refs[8].source == f"{base}/img/h %239.jpg"  # '#' would start a URI fragment
    assert [r.error is None for r in refs] == [True, True, True, True, False, False, False, True, True, False]
    numbering = catalog.numbering
    assert refs[4].error == (
        f"manifest row 5 has image path '../up/e.jpg' with '..', which would leave the manifest's prefix {base}/; "
        f"write a path inside it or a full URI ({numbering})"
    )
    assert refs[5].error.startswith("manifest row 6 has image path 'img/../../f.jpg' with '..'")
    assert refs[6].sku == "<row 7>" and "manifest row 7 has an empty sku" in refs[6].error
    assert "manifest row 10 has the same sku as manifest row 1" in refs[9].error
    assert catalog.count() == 10 and catalog_for(tmp_path, f"{{path: {uri}, limit: 3}}").count() == 3


def test_a_local_manifest_keeps_dot_dot_cells_as_before(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "m.csv").write_bytes(manifest_bytes(".csv", ROWS))
    refs = list(catalog_for(tmp_path, "{path: lists/m.csv}"))
    assert refs[4].error is None and refs[4].source == f"{tmp_path}/lists/../up/e.jpg"
    assert refs[8].source == f"{tmp_path}/lists/img/h #9.jpg"


def test_a_csv_manifest_in_a_bucket_with_quoted_line_breaks_keeps_its_row_numbers(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    body = 'sku,title,image\nA1,"two\nlines",a.png\n,"x",a.png\nB2,"say ""hi""\n\nthere",b.png\n'
    put(s3_server, s3_bucket, "m.csv", body.encode())
    put(s3_server, s3_bucket, "m.tsv", b'sku\ttitle\timage\nT1\t"tab\tand\nline"\tt.png\n')
    refs = list(catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/m.csv'}}"))
    assert [(r.sku, r.source, r.error is None) for r in refs] == [
        ("A1", f"s3://{s3_bucket}/a.png", True),
        ("<row 2>", f"s3://{s3_bucket}/a.png", False),
        ("B2", f"s3://{s3_bucket}/b.png", True),
    ]
    assert "manifest row 2 has an empty sku" in refs[1].error
    tsv = list(catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/m.tsv'}}"))
    assert [(r.sku, r.source) for r in tsv] == [("T1", f"s3://{s3_bucket}/t.png")]


def test_a_manifest_larger_than_one_read_streams_in_order(s3_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    """3 MiB and more: several ranged reads, several pyarrow blocks, rows numbered across them."""
    rows = [(f"SKU-{i:07d}", f"img/{i:07d}-{'x' * 20}.jpg") for i in range(70_000)]
    rows[-1] = ("SKU-0000000", "img/dup.jpg")
    for suffix in (".csv", ".jsonl", ".parquet"):
        put(s3_server, s3_bucket, f"big{suffix}", manifest_bytes(suffix, rows))
        catalog = catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/big{suffix}'}}")
        catalog.batch_rows = 30_000
        scan = catalog.scan()
        assert scan.items == 70_000 and scan.duplicates.to_pydict()["first_row"] == [1], suffix
        last = list(catalog.batches(scan.duplicates))[-1].to_pydict()
        assert last["row"][-1] == 70_000 and last["sku"][-2] == "SKU-0069998", suffix
        assert "manifest row 70000 has the same sku as manifest row 1" in last["error"][-1], suffix


def test_manifest_reads_are_retried_while_the_server_is_down(s3_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    """Opening and each ranged read of a manifest are retried on transient errors (here: connection refused), so an
    outage shorter than the retries does not end a run, whether it starts before the catalog is read or mid-read."""
    from imgx.io.catalog import _RetriedReads

    body = manifest_bytes(".csv", ROWS)
    put(s3_server, s3_bucket, "lists/m.csv", body)
    uri = f"s3://{s3_bucket}/lists/m.csv"
    catalog = catalog_for(tmp_path, f"{{path: '{uri}'}}")
    with fs.open_input(uri) as file, _RetriedReads(file, uri) as handle:  # the reads a manifest's download makes
        first = handle.read(10)
        s3_server.stop()
        restart = threading.Timer(0.5, s3_server.start)
        restart.start()
        try:
            assert first + handle.read() == body
        finally:
            restart.join()
    s3_server.stop()
    restart = threading.Timer(0.5, s3_server.start)
    restart.start()
    try:
        assert [r.sku for r in catalog][:2] == ["A-1", "B-2"]
    finally:
        restart.join()


def test_a_bucket_manifest_is_downloaded_once_and_every_pass_reads_that_copy(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path
) -> None:
    """count, the duplicate scan and the items read one download: a manifest replaced during the run changes none of
    them; the local copy goes with its reader."""
    import gc

    put(s3_server, s3_bucket, "lists/m.csv", b"sku,image\nA,a.jpg\nB,b.jpg\nA,c.jpg\n")
    uri = f"s3://{s3_bucket}/lists/m.csv"
    catalog = catalog_for(tmp_path, f"{{path: '{uri}'}}")
    assert catalog.count() == 3
    put(s3_server, s3_bucket, "lists/m.csv", b"sku,image\nX,x.jpg\n")
    scan = catalog.scan()
    assert (scan.items, scan.duplicates.column("dup_sku").to_pylist()) == (3, ["A"])
    assert [r.sku for r in catalog] == ["A", "B", "A"]
    copy = catalog._reader._copy
    assert copy is not None and Path(copy).read_bytes().startswith(b"sku,image\nA,")
    assert catalog_for(tmp_path, f"{{path: '{uri}'}}").count() == 1
    del catalog
    gc.collect()
    assert not Path(copy).exists(), "the manifest's local copy outlived its catalog"


def test_a_missing_column_in_a_bucket_manifest_names_the_uri(s3_server: MotoS3, s3_bucket: str, tmp_path) -> None:
    put(s3_server, s3_bucket, "m.csv", b"id,photo\n1,a.jpg\n")
    catalog = catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/m.csv'}}")
    with pytest.raises(RecipeError, match=rf"manifest s3://{s3_bucket}/m.csv has no column 'sku', 'image'"):
        list(catalog)


# -- what a wrong input.path says ------------------------------------------------------------------------------------


def input_error(tmp_path: Path, uri: str) -> RecipeError:
    with pytest.raises(RecipeError) as caught:
        catalog_for(tmp_path, f"{{path: '{uri}'}}")
    error = caught.value
    assert error.key_path == "input.path" and str(error).count("\n") == 0, str(error)
    assert f"got input.path {uri!r}: " in error.message, error.message
    return error


def test_a_missing_bucket_object_or_prefix_is_one_recipe_error_on_input_path(s3_bucket: str, tmp_path: Path) -> None:
    missing = input_error(tmp_path, "s3://imgx-no-such-bucket-4f1d/photos")
    assert missing.message.endswith("the bucket does not exist; create it or fix the name")
    for uri in (f"s3://{s3_bucket}/lists/none.csv", f"s3://{s3_bucket}/no-photos"):
        assert input_error(tmp_path, uri).message.endswith("nothing exists there; fix the path")


def test_an_unknown_manifest_suffix_in_a_bucket_is_named(s3_server: MotoS3, s3_bucket: str, tmp_path: Path) -> None:
    put(s3_server, s3_bucket, "lists/m.xlsx")
    with pytest.raises(RecipeError, match=r"input.path: got manifest 'm.xlsx'; expected a folder or a manifest"):
        catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/lists/m.xlsx'}}")


@pytest.fixture
def enforced_auth(s3_server: MotoS3, s3_bucket: str):
    """moto checking signatures and IAM policies; users made before it is switched on: one who may read the bucket,
    one who may do nothing in S3. Yields their (access key id, secret)."""
    reader = s3_server.create_user(f"reader-{s3_bucket[-6:]}", ["s3:GetObject", "s3:ListBucket"])
    nobody = s3_server.create_user(f"nobody-{s3_bucket[-6:]}", ["iam:GetUser"])
    put(s3_server, s3_bucket, "photos/a.jpg")
    put(s3_server, s3_bucket, "photos/sub/b.jpg")
    put(s3_server, s3_bucket, "lists/m.csv", b"sku,image\nA,../photos/a.jpg\nB,b.jpg\n")
    s3_server.set_auth(True)
    try:
        yield reader, nobody
    finally:
        s3_server.set_auth(False)


def test_wrong_credentials_are_one_recipe_error_naming_what_to_fix(
    s3_bucket: str, enforced_auth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (reader_key, reader_secret), (nobody_key, nobody_secret) = enforced_auth
    denied = (
        "access denied with the credentials from AWS_ACCESS_KEY_ID; grant them s3:GetObject here or use other "
        "credentials"
    )
    # An unknown key, a wrong secret and a user without rights read the same: S3 answers the HEAD of an object or
    # prefix with a bare 403, no error code to tell them apart.
    for key, secret in (
        ("AKIAUNKNOWNIMGXTEST", reader_secret),
        (reader_key, "not-the-secret"),
        (nobody_key, nobody_secret),
    ):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        for uri in (f"s3://{s3_bucket}/photos", f"s3://{s3_bucket}/lists/m.csv"):
            assert input_error(tmp_path, uri).message == f"got input.path {uri!r}: {denied}", (key, uri)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", reader_key)  # signed requests with rights to read: all works
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", reader_secret)
    assert [r.sku for r in catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/photos'}}")] == ["a", "sub/b"]
    refs = list(catalog_for(tmp_path, f"{{path: 's3://{s3_bucket}/lists/m.csv'}}"))
    assert "leave the manifest's prefix" in refs[0].error and refs[1].source == f"s3://{s3_bucket}/lists/b.jpg"


# -- imgx validate and imgx plan -------------------------------------------------------------------------------------


def imgx(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_validate_checks_an_object_store_input_path(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    recipe = tmp_path / "r.yaml"
    text = "version: 1\nname: v\ninput: {{path: '{path}'}}\nstages: [{{id: a, uses: color.gamma}}]\n"
    recipe.write_text(text.format(path=f"s3://{s3_bucket}/nothing-here"))
    result = imgx("validate", recipe)
    assert result.exit_code == 2
    assert f"{recipe}:3: input.path: got input.path 's3://{s3_bucket}/nothing-here': nothing exists there" in (
        result.stderr
    )
    recipe.write_text(text.format(path="s3://imgx-no-such-bucket-4f1d/x"))
    assert "the bucket does not exist; create it or fix the name" in imgx("validate", recipe).stderr
    put(s3_server, s3_bucket, "photos/a.jpg")
    recipe.write_text(text.format(path=f"s3://{s3_bucket}/photos"))
    result = imgx("validate", recipe)
    assert result.exit_code == 0, result.output


def test_plan_skips_the_output_prefix_inside_an_object_store_catalog(
    s3_server: MotoS3, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    for key in ("photos/a.jpg", "photos/out/a/gamma.png", "photos/z.jpg"):
        put(s3_server, s3_bucket, key)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"version: 1\nname: p\ninput: {{path: 's3://{s3_bucket}/photos'}}\n"
        f"output: {{dir: 's3://{s3_bucket}/photos/out'}}\nstages: [{{id: a, uses: color.gamma}}]\n"
    )
    result = imgx("plan", recipe, "--count")
    assert result.exit_code == 0, result.output
    assert f"input: folder s3://{s3_bucket}/photos" in result.stdout and "items: 2" in result.stdout
    assert "first items: a, z" in result.stdout
