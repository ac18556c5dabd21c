"""Integration fixtures: a real S3 endpoint (moto server) and a plain HTTP file server, both on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
AWS_CLEARED = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION")


@dataclass(frozen=True)
class S3Server:
    """A moto server; AWS_ENDPOINT_URL and test credentials point boto3 (and dvc) at it while it runs."""

    endpoint: str

    def client(self, service: str = "s3", **kwargs):
        import boto3

        return boto3.session.Session().client(service, **kwargs)

    def require_auth(self, free_requests: float) -> None:
        """Check signatures and IAM permissions after `free_requests` more requests (inf: never)."""
        # a raw body: with urllib's default form content type the server would see no data
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset-auth", data=str(free_requests).encode(),
                                         headers={"Content-Type": "text/plain"}, method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    isolated = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for name in AWS_CLEARED:
            patch.delenv(name, raising=False)
        for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint,
                            # no ~/.aws files: only the variables above count
                            "AWS_CONFIG_FILE": str(isolated / "config"),
                            "AWS_SHARED_CREDENTIALS_FILE": str(isolated / "credentials")}.items():
            patch.setenv(name, value)
        try:
            yield S3Server(endpoint)
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket on the moto server."""
    name = f"vad-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class HttpServer:
    """A static file server: files written under `root` are served at `url`/<relative path>."""

    root: Path
    url: str


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keeps pytest output free of access logs
        pass


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
