"""The cache: verified before use, a bad copy replaced, offline use, IMGX_MODELS_PATH, safe names, and concurrent
pulls from several real processes fetching once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _support import default_registry
from imgx.errors import ModelError
from imgx.models import ensure_files, fetch_model, file_statuses, models_dir


def test_a_cached_file_with_a_wrong_hash_is_reported_and_replaced_on_pull(serve, weights, make_spec) -> None:
    server = serve()
    (server.root / "small-net.pt").write_bytes(weights.path.read_bytes())
    spec = make_spec(f"{server.url}/small-net.pt")
    target = models_dir() / "small" / "small-net.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"a truncated download")
    assert [s.state for s in file_statuses(spec)] == ["wrong hash"]
    with pytest.raises(ModelError) as info:
        ensure_files(spec, pull=False, registry=default_registry())
    message = str(info.value)
    assert "the cached file has sha256 " in message and "not tried (pulling is off): http://127.0.0.1:" in message
    assert "run `imgx models pull small`" in message and server.requests == {}
    assert ensure_files(spec, registry=default_registry())["weights"].read_bytes() == weights.path.read_bytes()
    assert [s.state for s in file_statuses(spec)] == ["cached"] and server.requests == {"/small-net.pt": 1}


def test_pull_false_and_imgx_offline_use_only_this_machine(serve, weights, make_spec, monkeypatch) -> None:
    server = serve()
    (server.root / "small-net.pt").write_bytes(weights.path.read_bytes())
    spec = make_spec(f"{server.url}/small-net.pt", str(weights.path))
    assert (
        ensure_files(spec, pull=False, registry=default_registry())["weights"].read_bytes() == weights.path.read_bytes()
    )  # the local source
    remote_only = make_spec(f"{server.url}/small-net.pt", name="remote")
    monkeypatch.setenv("IMGX_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"not tried \(IMGX_OFFLINE is set\): http://127\.0\.0\.1:\d+/small-net\.pt"):
        ensure_files(remote_only, registry=default_registry())
    assert server.requests == {}
    monkeypatch.delenv("IMGX_OFFLINE")
    assert fetch_model(remote_only, registry=default_registry())[0].origin == f"{server.url}/small-net.pt"


def test_imgx_models_path_is_searched_before_the_sources(tmp_path, weights, make_spec, monkeypatch) -> None:
    """An air-gapped machine: a folder of hand-placed files (flat, or a copied cache with model folders)."""
    flat, copied = tmp_path / "flat", tmp_path / "copied-cache"
    flat.mkdir()
    (flat / "small-net.pt").write_bytes(b"some other file with the same name")
    (copied / "small").mkdir(parents=True)
    (copied / "small" / "small-net.pt").write_bytes(weights.path.read_bytes())
    monkeypatch.setenv("IMGX_MODELS_PATH", os.pathsep.join([str(flat), str(copied)]))
    spec = make_spec("https://weights.invalid/small-net.pt")
    fetched = fetch_model(spec, pull=False, registry=default_registry())
    assert fetched[0].origin == str(copied / "small" / "small-net.pt")
    assert fetched[0].path == models_dir() / "small" / "small-net.pt"
    assert fetched[0].path.read_bytes() == weights.path.read_bytes()
    (copied / "small" / "small-net.pt").unlink()
    with pytest.raises(ModelError) as info:
        ensure_files(
            make_spec("https://weights.invalid/small-net.pt", name="other"), pull=False, registry=default_registry()
        )
    assert f"IMGX_MODELS_PATH: {flat / 'small-net.pt'} has sha256 " in str(info.value)


def test_an_unknown_scheme_lists_the_known_ones(make_spec) -> None:
    with pytest.raises(ModelError) as info:
        ensure_files(make_spec("s3://bucket/small-net.pt"), registry=default_registry())
    assert (
        "s3://bucket/small-net.pt: no model source handles scheme 's3' (known: '', 'file', 'http', 'https', 'pip'"
        in (str(info.value))
    )


@pytest.mark.parametrize(
    ("name", "filename", "words"),
    [
        ("../escape", "small-net.pt", "got model name '../escape' for model '../escape'"),
        ("small", "../../etc/passwd", "got file name '../../etc/passwd' for model 'small'"),
        ("small", "sub/w.pt", "got file name 'sub/w.pt'"),
    ],
)
def test_names_cannot_escape_the_cache(weights, make_spec, name: str, filename: str, words: str) -> None:
    with pytest.raises(ModelError, match="expected a plain name") as info:
        ensure_files(make_spec(str(weights.path), name=name, filename=filename), registry=default_registry())
    assert words in str(info.value)
    assert not models_dir().exists()  # refused before anything was written


def test_a_malformed_pinned_hash_is_a_spec_error(weights, make_spec) -> None:
    with pytest.raises(
        ModelError, match=r"got sha256 'abc' for small-net\.pt of model 'small'; expected 64 hex digits"
    ):
        ensure_files(make_spec(str(weights.path), sha256="abc"), registry=default_registry())


PLUGIN = """
import imgx
from imgx.models import ModelSpec, WeightFile


def build(paths):
    raise RuntimeError("not needed for pulling")


@imgx.hookimpl
def imgx_models():
    weight = WeightFile("small-net.pt", "{sha256}", ("{url}",))
    return [ModelSpec(name="small", files={{"weights": weight}}, build=build)]
"""


@pytest.mark.slow
def test_concurrent_pulls_from_several_processes_fetch_once(tmp_path, serve, weights, private_cache) -> None:
    """Four real ``imgx models pull`` processes start together against a slow server: the file lock lets one fetch
    while the others wait and then find it cached; every process succeeds and the cache holds the right bytes."""
    server = serve(delay=1.5)
    (server.root / "small-net.pt").write_bytes(weights.path.read_bytes())
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    url = f"{server.url}/small-net.pt"
    (plugins / "small_model.py").write_text(textwrap.dedent(PLUGIN.format(sha256=weights.sha256, url=url)))
    env = {**os.environ, "IMGX_HOME": str(private_cache), "COLUMNS": "300"}
    command = [sys.executable, "-m", "imgx", "models", "pull", "small", "--plugins-dir", str(plugins)]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
    lines = sorted(out.strip() for out, _ in outputs)
    target = Path(private_cache) / "models" / "small" / "small-net.pt"
    assert lines[:3] == [f"small: small-net.pt ({weights.size / 1000:.1f} kB) already cached -> {target}"] * 3
    assert lines[3] == f"small: small-net.pt ({weights.size / 1000:.1f} kB) fetched from {url} -> {target}"
    assert server.requests == {"/small-net.pt": 1}
    assert target.read_bytes() == weights.path.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == [".small-net.pt.lock", "small-net.pt"]


def test_a_pulled_file_is_readable_as_the_umask_allows_and_no_temp_is_left(weights, make_spec) -> None:
    """A shared model cache: the file gets ``0o666`` minus the umask (``0o644`` under ``022``), not ``0o600``."""
    old = os.umask(0o022)
    try:
        target = ensure_files(make_spec(str(weights.path)), registry=default_registry())["weights"]
    finally:
        os.umask(old)
    assert target.read_bytes() == weights.path.read_bytes() and target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == [target.name]
