"""An S3-compatible server on loopback for the tests: moto's standalone server, in a thread of the test process.

Importable as ``_s3``; ``tests/conftest.py`` turns it into fixtures. Nothing here talks to a real cloud:
the server listens on 127.0.0.1 on a free port, and the fixtures point ``AWS_ENDPOINT_URL`` at it through
``monkeypatch`` (so the process environment is restored after each test).
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from _support import basic_recipe

REGION = "us-east-1"
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoS3:
    """moto's ``ThreadedMotoServer`` on ``127.0.0.1:<port>``; :meth:`stop` and :meth:`start` keep the port and the
    buckets (moto keeps its state in the process, not in the server thread), so tests can take it down for a while.
    """

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server_class = ThreadedMotoServer
        self._server: Any = None

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request drowns a failure's report
        self._server = self._server_class(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + 10
        while True:  # start() returns before the socket accepts on a busy machine
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, service: str = "s3", *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        """A boto3 client for this server, with explicit settings (it does not read the environment)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    def set_auth(self, enforced: bool) -> None:
        """Make moto check signatures and IAM policies (``True``) or accept anything (``False``, its default)."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0" if enforced else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def create_user(self, name: str, actions: list[str]) -> tuple[str, str]:
        """An IAM user allowed ``actions`` on every resource; returns its (access key id, secret)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]


def s3_environment(monkeypatch: pytest.MonkeyPatch, server: MotoS3) -> None:
    """Point the standard AWS variables at ``server`` for one test (restored afterwards by monkeypatch)."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254 for credentials
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/imgx-tests")


def moto_server() -> Iterator[MotoS3]:
    """Generator behind the session fixture: start the server, yield it, stop it."""
    pytest.importorskip("moto.server", reason="moto is not installed (pip install -e '.[dev]' brings moto[server])")
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_bucket(server: MotoS3) -> str:
    """A fresh, empty bucket with a unique name."""
    name = f"imgx-test-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=name)
    return name


# -- catalogs and runs in a bucket ---------------------------------------------------------------------------


def subprocess_env(server: MotoS3, **extra: str) -> dict[str, str]:
    """This process's environment for a child (an ``imgx`` run, a Ray node) that talks to ``server`` only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "RAY_ADDRESS"}
    env.update(
        AWS_ENDPOINT_URL=server.endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/imgx-tests",
    )
    env.update(extra)
    return env


def upload_catalog(server: MotoS3, bucket: str, photo_catalog: Path, prefix: str, copies: int = 1) -> list[str]:
    """The real photos as ``<prefix>/setNN/<folder>/<name>.jpg`` objects; returns their SKUs."""
    client = server.client()
    skus = []
    for index in range(copies):
        for photo in sorted(photo_catalog.rglob("*.jpg")):
            sku = f"set{index:02d}/{photo.relative_to(photo_catalog).with_suffix('').as_posix()}"
            client.put_object(Bucket=bucket, Key=f"{prefix}/{sku}.jpg", Body=photo.read_bytes())
            skus.append(sku)
    return skus


def keys(server: MotoS3, bucket: str, prefix: str = "") -> list[str]:
    """Every key under ``prefix``."""
    client = server.client()
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found


def s3_recipe(bucket: str, **execution: object) -> dict:
    """The tests' basic recipe (enhance -> fit, PNG, ``{sku}/{output}.{ext}``) from ``catalog/`` into ``out/``."""
    recipe = basic_recipe(Path("unused"), Path("unused"), **execution)
    recipe["input"]["path"] = f"s3://{bucket}/catalog"
    recipe["output"]["dir"] = f"s3://{bucket}/out"
    return recipe


def check_outputs(server: MotoS3, bucket: str, skus: list[str]) -> None:
    """Every (sku, output) object is in the bucket and decodes whole."""
    client = server.client()
    for sku in skus:
        for output in ("enhanced", "square"):
            body = client.get_object(Bucket=bucket, Key=f"out/{sku}/{output}.png")["Body"].read()
            with Image.open(io.BytesIO(body)) as image:
                image.load()
