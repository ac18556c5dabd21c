"""resolve_source and fetch against a real S3 endpoint (moto server) and a local HTTP server; no internet."""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import socket
import tarfile
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from vad.data import catalog
from vad.data.sources import resolve_source
from vad.errors import DataError, DataLayoutError


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def stats(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


def one_line(error: pytest.ExceptionInfo, *words: str) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert error.value.__context__ is None or error.value.__suppress_context__  # raised `from None`
    for word in words:
        assert word in message
    return message


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# ---------------------------------------------------------------- local paths and schemes


def test_local_folder_is_returned_as_is(raw_dataset, tmp_path):
    assert resolve_source(raw_dataset, tmp_path) == raw_dataset
    assert not files_in(tmp_path)


def test_missing_local_folder_raises_layout_error(tmp_path):
    with pytest.raises(DataLayoutError) as error:
        resolve_source(tmp_path / "nope", tmp_path / "cache")
    one_line(error, "nope", "does not exist")


def test_unknown_scheme_lists_supported_ones(tmp_path):
    with pytest.raises(DataError) as error:
        resolve_source("ftp://example.org/data.zip", tmp_path)
    one_line(error, "ftp://", "s3://", "http(s)://")


@pytest.mark.parametrize("url", ["s3://", "s3://bucket/../../outside", "s3://bad bucket/x"])
def test_invalid_s3_location_raises_one_line(url, tmp_path):
    with pytest.raises(DataError) as error:
        resolve_source(url, tmp_path)
    one_line(error, url, "s3://bucket/prefix")


# ---------------------------------------------------------------- S3


def test_s3_mirror_is_identical_then_incremental(s3_server, s3_bucket, raw_dataset, tmp_path, caplog):
    client = s3_server.client()
    s3_server.upload(s3_bucket, "datasets/tiny", raw_dataset, client)
    client.put_object(Bucket=s3_bucket, Key="datasets/tinyother/x.txt", Body=b"not under the prefix")
    cache = tmp_path / "cache"

    local = resolve_source(f"s3://{s3_bucket}/datasets/tiny", cache, workers=4)
    assert local == cache / "s3" / s3_bucket / "datasets" / "tiny"
    assert digests(local) == digests(raw_dataset)

    before = stats(local)
    with caplog.at_level(logging.INFO, logger="vad.data.sources"):
        assert resolve_source(f"s3://{s3_bucket}/datasets/tiny/", cache) == local
    assert stats(local) == before  # same inodes and mtimes: nothing was rewritten
    assert "0 downloaded, 0 removed" in caplog.text

    keys = sorted(digests(raw_dataset))
    changed, deleted = keys[0], keys[1]
    client.put_object(Bucket=s3_bucket, Key=f"datasets/tiny/{changed}", Body=b"new content")
    client.delete_object(Bucket=s3_bucket, Key=f"datasets/tiny/{deleted}")
    client.put_object(Bucket=s3_bucket, Key="datasets/tiny/extra/new.txt", Body=b"added")
    resolve_source(f"s3://{s3_bucket}/datasets/tiny", cache, progress=True)
    assert (local / changed).read_bytes() == b"new content"
    assert not (local / deleted).exists()
    assert (local / "extra" / "new.txt").read_bytes() == b"added"
    after = stats(local)
    assert {k: v for k, v in after.items() if k not in (changed, "extra/new.txt")} == \
        {k: v for k, v in before.items() if k not in (changed, deleted)}


def test_s3_missing_bucket_raises_one_line(s3_server, tmp_path):
    with pytest.raises(DataLayoutError) as error:
        resolve_source("s3://no-such-bucket-vad/data", tmp_path)
    one_line(error, "no-such-bucket-vad", "does not exist")


def test_s3_empty_prefix_raises_one_line(s3_server, s3_bucket, tmp_path):
    s3_server.client().put_object(Bucket=s3_bucket, Key="other/file.txt", Body=b"x")
    with pytest.raises(DataLayoutError) as error:
        resolve_source(f"s3://{s3_bucket}/missing", tmp_path)
    one_line(error, s3_bucket, "no object")


def test_s3_unreachable_endpoint_raises_one_line(s3_server, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retry backoff in the test
    with pytest.raises(DataError) as error:
        resolve_source("s3://bucket/data", tmp_path)
    one_line(error, "bucket", "cannot reach", str(port))


class _Hanging(http.server.BaseHTTPRequestHandler):
    """Accepts every request and never answers (a server that hung)."""

    release = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.release.wait(300)

    do_HEAD = do_PUT = do_POST = do_GET

    def log_message(self, format, *args):
        pass


def test_s3_endpoint_that_stops_answering_fails_in_one_line_within_the_budget(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hanging)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("VAD_NETWORK_TIMEOUT", "3")
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    try:
        with pytest.raises(DataError) as error:
            resolve_source("s3://bucket/data", tmp_path / "cache")
    finally:
        _Hanging.release.set()
        server.shutdown()
        server.server_close()
    one_line(error, "bucket", "stopped answering", "3 tries within VAD_NETWORK_TIMEOUT=3 s")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.tmp"))


def test_s3_service_endpoint_variable_wins(s3_server, s3_bucket, tmp_path, monkeypatch):
    s3_server.client().put_object(Bucket=s3_bucket, Key="data/a.txt", Body=b"a")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # boto3 must prefer the S3-specific one
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    assert (resolve_source(f"s3://{s3_bucket}/data", tmp_path) / "a.txt").read_bytes() == b"a"


@pytest.fixture
def s3_with_auth(s3_server, s3_bucket, raw_dataset):
    """A bucket with data, a real IAM user without S3 permissions, and moto checking every request.

    moto accepts any credentials unless told otherwise: /moto-api/reset-auth makes it verify signatures and
    IAM policies after a given number of free requests (here the two IAM calls that create the user's key).
    """
    s3_server.upload(s3_bucket, "data", raw_dataset)
    iam = s3_server.client("iam")
    s3_server.require_auth(2)
    try:
        user = f"reader-{s3_bucket}"
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        yield s3_bucket, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        s3_server.require_auth(float("inf"))


@pytest.mark.parametrize("case, code", [("unknown key", "InvalidAccessKeyId"),
                                        ("wrong secret", "SignatureDoesNotMatch"),
                                        ("no permission", "AccessDenied")])
def test_s3_refused_credentials_raise_one_line(s3_with_auth, tmp_path, monkeypatch, case, code):
    bucket, key_id, secret = s3_with_auth
    credentials = {"unknown key": ("AKIAUNKNOWNUNKNOWN00", secret), "wrong secret": (key_id, "wrong" + secret),
                   "no permission": (key_id, secret)}[case]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials[1])
    with pytest.raises(DataError) as error:
        resolve_source(f"s3://{bucket}/data", tmp_path / "cache")
    one_line(error, bucket, "refused the credentials", code)
    assert not files_in(tmp_path / "cache" / "s3" / bucket)


# ---------------------------------------------------------------- HTTP archives


def make_tar(path: Path, source: Path, arcname: str) -> Path:
    with tarfile.open(path, "w:gz") as handle:
        handle.add(source, arcname=arcname)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_http_tar_gz_is_verified_unpacked_and_cached(http_server, raw_dataset, tmp_path):
    archive = make_tar(http_server.root / "tiny.tar.gz", raw_dataset, "tiny")
    digest = sha(archive)
    cache = tmp_path / "cache"
    local = resolve_source(f"{http_server.url}/tiny.tar.gz", cache, sha256=digest)
    assert local.name == "tiny" and local.parent.parent == cache / "http"  # descended into the top folder
    assert digests(local) == digests(raw_dataset)
    assert [p.name for p in (cache / "http").iterdir()] == [local.parent.name]  # the archive was not kept

    archive.unlink()  # served no more: the second call must not download
    assert resolve_source(f"{http_server.url}/tiny.tar.gz", cache, sha256=digest) == local


def test_http_zip_without_top_folder_is_returned_whole(http_server, tmp_path):
    with zipfile.ZipFile(http_server.root / "two.zip", "w") as handle:
        handle.writestr("train/a.txt", "a")
        handle.writestr("test/b.txt", "b")
    local = resolve_source(f"{http_server.url}/two.zip", tmp_path / "cache", progress=True)
    assert digests(local) == {"test/b.txt": hashlib.sha256(b"b").hexdigest(),
                              "train/a.txt": hashlib.sha256(b"a").hexdigest()}


def test_http_checksum_mismatch_leaves_nothing(http_server, raw_dataset, tmp_path):
    make_tar(http_server.root / "tiny.tgz", raw_dataset, "tiny")
    url, wrong = f"{http_server.url}/tiny.tgz", "0" * 64
    with pytest.raises(DataError) as error:
        resolve_source(url, tmp_path / "cache", sha256=wrong)
    one_line(error, url, wrong, sha(http_server.root / "tiny.tgz"))
    assert not files_in(tmp_path / "cache")


def test_http_404_raises_one_line(http_server, tmp_path):
    url = f"{http_server.url}/missing.zip"
    with pytest.raises(DataError) as error:
        resolve_source(url, tmp_path / "cache")
    one_line(error, url, "404")
    assert not files_in(tmp_path / "cache")


def test_http_non_archive_raises(http_server, tmp_path):
    (http_server.root / "data.zip").write_text("this is not an archive")
    with pytest.raises(DataError) as error:
        resolve_source(f"{http_server.url}/data.zip", tmp_path / "cache")
    one_line(error, "not a .tar.gz")
    assert not files_in(tmp_path / "cache")


def test_http_truncated_archive_raises_and_leaves_nothing(http_server, raw_dataset, tmp_path):
    whole = make_tar(tmp_path / "whole.tar.gz", raw_dataset, "tiny").read_bytes()
    (http_server.root / "cut.tar.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as error:
        resolve_source(f"{http_server.url}/cut.tar.gz", tmp_path / "cache")
    one_line(error, "cut.tar.gz", "damaged")
    assert not files_in(tmp_path / "cache")


def evil_tar(path: Path, kind: str) -> str:
    with tarfile.open(path, "w:gz") as handle:
        def add(info: tarfile.TarInfo, data: bytes = b"") -> None:
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))

        add(tarfile.TarInfo("ok/readme.txt"), b"fine")
        if kind == "dotdot":
            add(tarfile.TarInfo("../evil"), b"pwned")
            return "../evil"
        link = tarfile.TarInfo("ok/link")
        link.type, link.linkname = (tarfile.SYMTYPE, "../../outside") if kind == "symlink" else \
            (tarfile.LNKTYPE, "/etc/passwd") if kind == "hardlink" else (tarfile.SYMTYPE, "/tmp")
        add(link)
        add(tarfile.TarInfo("ok/link/evil"), b"pwned")
        return "ok/link"


@pytest.mark.parametrize("kind", ["dotdot", "symlink", "hardlink", "absolute symlink"])
def test_http_archive_escaping_the_target_is_refused(http_server, tmp_path, kind):
    member = evil_tar(http_server.root / "evil.tar.gz", kind)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as error:
        resolve_source(f"{http_server.url}/evil.tar.gz", cache)
    one_line(error, repr(member), "unsafe member")
    assert not files_in(cache)
    assert not any(p.name in ("evil", "outside") for p in tmp_path.rglob("*"))


def test_http_zip_escaping_the_target_is_refused(http_server, tmp_path):
    with zipfile.ZipFile(http_server.root / "evil.zip", "w") as handle:
        handle.writestr("ok.txt", "fine")
        handle.writestr("../evil", "pwned")
    with pytest.raises(DataError) as error:
        resolve_source(f"{http_server.url}/evil.zip", tmp_path / "cache")
    one_line(error, "'../evil'")
    assert not files_in(tmp_path / "cache") and not (tmp_path / "cache" / "http" / "evil").exists()


# ---------------------------------------------------------------- catalog.fetch


def test_catalog_knows_the_official_sources():
    assert set(catalog.DATASETS) == {"ped1", "ped2", "avenue"}
    assert catalog.DATASETS["ped2"].archives[0].url == \
        "http://www.svcl.ucsd.edu/projects/anomaly/UCSD_Anomaly_Dataset.tar.gz"
    assert catalog.DATASETS["avenue"].layout.value == "avenue"


def test_fetch_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(DataError) as error:
        catalog.fetch("ped3", tmp_path)
    one_line(error, "ped3", "avenue, ped1, ped2")


def test_fetch_ped2_links_the_ucsd_subset(http_server, tmp_path, monkeypatch):
    tree = tmp_path / "UCSD_Anomaly_Dataset.v1p2"
    for subset in ("UCSDped1", "UCSDped2"):
        (tree / subset / "Train" / "Train001").mkdir(parents=True)
        (tree / subset / "Train" / "Train001" / "001.tif").write_bytes(subset.encode())
        (tree / subset / "Test").mkdir()
        (tree / subset / "Test" / f"{subset}.m").write_text("TestVideoFile{end+1}.gt_frame = [61:180];\n")
    archive = make_tar(http_server.root / "UCSD_Anomaly_Dataset.tar.gz", tree, tree.name)
    dataset = catalog.DATASETS["ped2"]
    part = replace(dataset.archives[0], url=f"{http_server.url}/{archive.name}", sha256=sha(archive))
    monkeypatch.setitem(catalog.DATASETS, "ped2", replace(dataset, archives=(part,)))

    root = catalog.fetch("ped2", tmp_path / "datasets")
    assert root == (tmp_path / "datasets" / "ped2").resolve()
    assert [p.name for p in root.iterdir()] == ["UCSDped2"]
    assert (root / "UCSDped2" / "Train" / "Train001" / "001.tif").read_bytes() == b"UCSDped2"
    assert (root / "UCSDped2" / "Test" / "UCSDped2.m").is_file()
    assert catalog.DATASETS["ped2"].layout.value == "ucsd"
    assert catalog.fetch("ped2", tmp_path / "datasets") == root  # cached, links rebuilt


def test_fetch_avenue_joins_videos_and_ground_truth(http_server, tmp_path, monkeypatch):
    with zipfile.ZipFile(http_server.root / "Avenue_Dataset.zip", "w") as handle:
        handle.writestr("Avenue Dataset/training_videos/01.avi", "train")
        handle.writestr("Avenue Dataset/testing_videos/01.avi", "test")
        handle.writestr("__MACOSX/._junk", "junk")
    with zipfile.ZipFile(http_server.root / "ground_truth_demo.zip", "w") as handle:
        handle.writestr("ground_truth_demo/testing_label_mask/1_label.mat", "mask")
    videos, truth = catalog.DATASETS["avenue"].archives
    parts = (replace(videos, url=f"{http_server.url}/Avenue_Dataset.zip"),
             replace(truth, url=f"{http_server.url}/ground_truth_demo.zip"))
    monkeypatch.setitem(catalog.DATASETS, "avenue", replace(catalog.DATASETS["avenue"], archives=parts))

    root = catalog.fetch("avenue", tmp_path / "datasets")
    assert sorted(p.name for p in root.iterdir()) == ["ground_truth_demo", "testing_videos", "training_videos"]
    assert (root / "testing_videos" / "01.avi").read_text() == "test"
    assert (root / "ground_truth_demo" / "testing_label_mask" / "1_label.mat").read_text() == "mask"
