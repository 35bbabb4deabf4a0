"""Fixtures for the storage tests: an S3-compatible server (moto) on loopback, and a bucket per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _s3 import MotoS3, moto_server, new_bucket, s3_environment


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 for the whole session (skipped with a reason if moto is not installed)."""
    yield from moto_server()


@pytest.fixture
def s3_bucket(s3_server: MotoS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the loopback server, with ``AWS_ENDPOINT_URL`` and test credentials set for this test."""
    s3_environment(monkeypatch, s3_server)
    return new_bucket(s3_server)
