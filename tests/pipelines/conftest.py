"""Pipeline fixtures: the repository root on sys.path (for `components` and `pipelines`) and a moto S3 server.

The S3 fixtures repeat those of tests/integration/conftest.py, which pytest does not share across folders.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
AWS_CLEARED = ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A moto server on 127.0.0.1; AWS_ENDPOINT_URL and test credentials point boto3 at it (and subprocesses)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    isolated = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for name in AWS_CLEARED:
            patch.delenv(name, raising=False)
        for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_CONFIG_FILE": str(isolated / "config"),
                            "AWS_SHARED_CREDENTIALS_FILE": str(isolated / "credentials")}.items():
            patch.setenv(name, value)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3

    name = f"vad-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3").create_bucket(Bucket=name)
    return name
