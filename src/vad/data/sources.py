"""Where a dataset comes from: a local folder, an S3 prefix, an HTTP(S) archive or a folder in a DVC repository.

`resolve_source` turns each of them into a local folder that `vad extract` can read:

    <cache_dir>/
      s3/<bucket>/<prefix>/...          mirror of the objects under s3://<bucket>/<prefix>
      s3/.index/<bucket>-<hash>.json    ETag and size of each mirrored object (incremental re-runs)
      http/<archive>-<hash>/...         one unpacked archive per URL and sha256
      dvc/<folder>-<hash>/...           the folder read from a DVC repository (fetched again on every call)

A DVC source is `dvc://<repo>#<path>[@<rev>]`: `<repo>` is a Git URL (`https://...`, `ssh://...`,
`git@host:org/repo.git`) or a local path (`dvc:///abs/repo`, `dvc://relative/repo`) of a DVC repository,
`<path>` the folder inside it (tracked by DVC or Git) and `<rev>` any Git revision (branch, tag, commit; default:
the default branch, or the working tree of a local repository). It is read with `dvc.api.DVCFileSystem`, which
pulls DVC-tracked files from the repository's cache or its default remote. A path that itself holds "@" needs an
explicit `@<rev>`. Example: `dvc://https://github.com/org/datasets#ped2/videos@v1.0`.

The S3 endpoint and credentials come from the standard AWS variables, which boto3 reads itself
(AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import posixpath
import re
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath

from vad.atomic import atomic_dir, atomic_file, atomic_write_text
from vad.errors import DataError, DataLayoutError, VadError
from vad.network import ATTEMPTS, ENV, budget, s3_config_kwargs

__all__ = ["resolve_source", "parse_dvc_uri", "ARCHIVE_SUFFIXES"]

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
SUPPORTED = ("a local folder, s3://bucket/prefix, an http(s):// archive (.tar.gz, .tgz, .tar, .zip) or "
             "dvc://<repo>#<path>[@<rev>]")
CHUNK_BYTES = 1 << 20
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken",
               "Forbidden", "403", "AllAccessDisabled"}
_IGNORED_TOP = {"__MACOSX"}  # resource forks that macOS zips add next to the real top folder


def resolve_source(source: str | Path, cache_dir: Path, *, sha256: str | None = None, workers: int = 8,
                   progress: bool = False) -> Path:
    """Return a local folder holding the dataset that `source` names, downloading it into `cache_dir` if needed.

    Args:
        source: A local folder (returned as is), `s3://bucket/prefix` (mirrored incrementally), an
            `http(s)://` URL of a .tar.gz/.tgz/.tar/.zip archive (downloaded and unpacked once) or
            `dvc://<repo>#<path>[@<rev>]`, a folder in a DVC repository (see the module docstring).
        cache_dir: Folder for mirrors and unpacked archives; see the module docstring for its layout.
        sha256: Expected hex SHA-256 of the archive (HTTP only); None skips the check.
        workers: Parallel S3 downloads.
        progress: Show a tqdm bar while downloading.

    Raises:
        DataLayoutError: The folder, bucket or prefix does not exist or holds nothing.
        DataError: The source is unreachable, refuses the credentials, fails its checksum or is unsafe.
    """
    text = str(source)
    if "://" not in text:
        path = Path(text).expanduser()
        if not path.exists():
            raise DataLayoutError(f"dataset folder {path} does not exist; pass an existing folder or {SUPPORTED}")
        if not path.is_dir():
            raise DataLayoutError(f"dataset source {path} is a file, not a folder; pass {SUPPORTED}")
        return path
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme == "s3":
        return _resolve_s3(text, Path(cache_dir), workers, progress)
    if scheme in ("http", "https"):
        return _resolve_http(text, Path(cache_dir), sha256, progress)
    if scheme == "dvc":
        return _resolve_dvc(text, Path(cache_dir))
    raise DataError(f"unsupported dataset source {text} (scheme {scheme}://); pass {SUPPORTED}")


# ---------------------------------------------------------------- S3


def _resolve_s3(url: str, cache_dir: Path, workers: int, progress: bool) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urllib.parse.urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", bucket) or ".." in PurePosixPath(prefix).parts:
        raise DataError(f"{url} is not a valid S3 location; use s3://bucket/prefix (no '..' in the prefix)")
    target = cache_dir / "s3" / bucket / prefix
    index_path = cache_dir / "s3" / ".index" / f"{bucket}-{hashlib.sha256(prefix.encode()).hexdigest()[:12]}.json"
    client = _s3_client(workers)
    try:
        listing = _list_objects(client, bucket, prefix)
        if not listing:
            raise DataLayoutError(f"no object under s3://{bucket}/{prefix} at {client.meta.endpoint_url}; "
                                  f"upload the dataset there or fix the prefix")
        old = _read_index(index_path)
        stale = [rel for rel, entry in listing.items() if old.get(rel) != entry or not _same_size(target / rel, entry)]
        removed = _prune(target, listing)
        index = {rel: old[rel] for rel in listing if rel not in stale}
        try:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                futures = {pool.submit(_download_object, client, bucket, listing[rel]["key"], target / rel): rel
                           for rel in stale}
                done = _progress(progress, as_completed(futures), total=len(futures), desc=bucket, unit="file")
                for future in done:
                    index[futures[future]] = future.result()
        finally:
            atomic_write_text(index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")
    except (ClientError, BotoCoreError) as error:
        raise _s3_error(error, bucket, url, client.meta.endpoint_url) from None
    log.info("s3://%s/%s: %d objects, %d downloaded, %d removed", bucket, prefix, len(listing), len(stale), removed)
    return target


def _s3_client(workers: int):
    import boto3
    from botocore.config import Config

    # AWS_MAX_ATTEMPTS / AWS_RETRY_MODE win when set; otherwise ATTEMPTS with standard backoff, timeouts from
    # VAD_NETWORK_TIMEOUT (vad.network)
    configured = {"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} & set(os.environ)
    config = Config(max_pool_connections=max(10, workers), **s3_config_kwargs(),
                    retries=None if configured else {"max_attempts": ATTEMPTS, "mode": "standard"})
    return boto3.session.Session().client("s3", config=config)


def _list_objects(client, bucket: str, prefix: str) -> dict[str, dict]:
    """Objects under `prefix`, keyed by their path relative to it: {rel: {key, etag, size}}."""
    listing = {}
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            rel = key[len(prefix) + 1:] if prefix else key
            if not rel or rel.endswith("/"):
                continue  # folder markers that consoles create
            if rel.startswith("/") or ".." in PurePosixPath(rel).parts:
                raise DataError(f"S3 object s3://{bucket}/{key} would land outside the cache folder; rename it")
            listing[rel] = {"key": key, "etag": obj["ETag"], "size": obj["Size"]}
    return listing


def _read_index(path: Path) -> dict[str, dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # no or damaged index: every object is downloaded again


def _same_size(path: Path, entry: dict) -> bool:
    try:
        return path.stat().st_size == entry["size"]
    except OSError:
        return False


def _prune(target: Path, listing: dict[str, dict]) -> int:
    """Delete local files (and leftover temp files) that no object under the prefix backs."""
    removed = 0
    for folder, _dirs, files in os.walk(target, topdown=False):
        for name in files:
            path = Path(folder, name)
            if path.relative_to(target).as_posix() not in listing:
                path.unlink()
                removed += 1
        if Path(folder) != target and not os.listdir(folder):
            os.rmdir(folder)
    return removed


def _download_object(client, bucket: str, key: str, path: Path) -> dict:
    with atomic_file(path) as handle:
        response = client.get_object(Bucket=bucket, Key=key)
        for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
            handle.write(chunk)
    return {"key": key, "etag": response["ETag"], "size": response["ContentLength"]}


def _s3_error(error: Exception, bucket: str, url: str, endpoint: str) -> VadError:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        HTTPClientError,
        NoCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, NoCredentialsError):
        return DataError(f"no AWS credentials to read bucket {bucket}; set AWS_ACCESS_KEY_ID and "
                         f"AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    if isinstance(error, (ConnectTimeoutError, ReadTimeoutError)):
        return DataError(f"the S3 endpoint {endpoint} stopped answering for bucket {bucket} ({ATTEMPTS} tries within "
                         f"{ENV}={budget():g} s); check the server, or raise {ENV}")
    if isinstance(error, (BotoConnectionError, HTTPClientError)):
        return DataError(f"cannot reach the S3 endpoint {endpoint} for bucket {bucket}; check AWS_ENDPOINT_URL "
                         f"(or AWS_ENDPOINT_URL_S3) and that the server is running")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "?"))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404", "NotFound"):
            return DataLayoutError(f"S3 bucket {bucket} does not exist at {endpoint}; fix the bucket in {url} "
                                   f"or AWS_ENDPOINT_URL")
        if code in _AUTH_CODES or status == 403:
            return DataError(f"S3 refused the credentials for bucket {bucket} ({code}); check AWS_ACCESS_KEY_ID, "
                             f"AWS_SECRET_ACCESS_KEY and the bucket policy")
        return DataError(f"S3 error {code} (HTTP {status}) on bucket {bucket}; check {url} and AWS_ENDPOINT_URL")
    message = " ".join(str(error).split())
    return DataError(f"S3 error on bucket {bucket} ({message}); check {url} and the AWS_* variables")


def _progress(enabled: bool, iterable=None, **kwargs):
    """A tqdm bar (imported only then) when `enabled`, else `iterable` itself (None when there is none)."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, **kwargs)


# ---------------------------------------------------------------- HTTP(S) archives


def _resolve_http(url: str, cache_dir: Path, sha256: str | None, progress: bool) -> Path:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name or "archive"
    stem = next((name[:-len(s)] for s in ARCHIVE_SUFFIXES if name.lower().endswith(s)), name)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "archive"
    key = hashlib.sha256(f"{url}\n{(sha256 or '').lower()}".encode()).hexdigest()[:12]
    target = cache_dir / "http" / f"{stem}-{key}"
    if target.is_dir():
        log.info("%s: already unpacked in %s", url, target)
        return _descend(target)
    archive = _download(url, target.with_name(f".{target.name}.download"), sha256, progress)
    try:
        with atomic_dir(target) as tmp:
            _unpack(archive, tmp, url)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise DataError(f"archive {url} is damaged or was refused while unpacking ({error}); "
                        f"check the URL or download it again") from None
    finally:
        archive.unlink(missing_ok=True)
    log.info("%s: unpacked into %s", url, target)
    return _descend(target)


def _download(url: str, path: Path, sha256: str | None, progress: bool) -> Path:
    """Stream `url` into `path` and check its digest; nothing stays behind on failure."""
    digest = hashlib.sha256()
    with atomic_file(path) as handle:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "vad"})
            with urllib.request.urlopen(request, timeout=budget()) as response:
                bar = _progress(progress, total=int(response.headers.get("Content-Length") or 0) or None,
                                desc=url.rsplit("/", 1)[-1], unit="B", unit_scale=True)
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    handle.write(chunk)
                    digest.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
        except urllib.error.HTTPError as error:
            raise DataError(f"cannot download {url}: HTTP {error.code} {error.reason}; check the URL") from None
        except (OSError, http.client.HTTPException) as error:
            reason = " ".join(str(getattr(error, "reason", error)).split())
            raise DataError(f"cannot download {url} ({reason}); check the address and the network") from None
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise DataError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; the download was "
                            f"removed, check the URL or the expected digest")
    return path


def _unpack(archive: Path, dest: Path, url: str) -> None:
    """Unpack a zip or tar archive into `dest`, refusing any member that would land outside it."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            for info in handle.infolist():
                _check_member(info.filename, info.filename, dest, url)
            handle.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as handle:
            members = handle.getmembers()
            for member in members:
                _check_member(member.name, member.name, dest, url)
                if member.issym():
                    _check_member(posixpath.join(posixpath.dirname(member.name), member.linkname), member.name,
                                  dest, url, link=True)
                elif member.islnk():
                    _check_member(member.linkname, member.name, dest, url, link=True)
                elif not (member.isfile() or member.isdir()):
                    raise DataError(f"archive {url} holds the special file {member.name}; only files, folders "
                                    f"and links are unpacked")
            handle.extractall(dest, members=members, filter="data")  # second guard on top of the checks
    else:
        raise DataError(f"{url} is not a .tar.gz, .tgz, .tar or .zip archive; point at one of those")


def _check_member(path: str, member: str, dest: Path, url: str, *, link: bool = False) -> None:
    """Raise DataError when `path` (a member name, or with `link` a link target) leaves `dest`."""
    root = os.path.normpath(dest)
    resolved = os.path.normpath(os.path.join(root, path))
    climbs = not link and ".." in re.split(r"[\\/]", path)  # names never need "..", link targets may
    if (path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or climbs
            or not (resolved == root or resolved.startswith(root + os.sep))):
        raise DataError(f"archive {url} holds the unsafe member {member!r} (it points outside the target "
                        f"folder); refusing to unpack it, check where the archive comes from")


def _descend(folder: Path) -> Path:
    """The archive's single top-level folder when it has one, else the unpacked folder itself."""
    entries = [entry for entry in folder.iterdir() if entry.name not in _IGNORED_TOP]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


# ---------------------------------------------------------------- DVC repositories


def parse_dvc_uri(uri: str) -> tuple[str, str, str | None]:
    """Split `dvc://<repo>#<path>[@<rev>]` into (repo, path, rev); rev is None when absent.

    >>> parse_dvc_uri("dvc://https://github.com/org/data#ped2/videos@v1.0")
    ('https://github.com/org/data', 'ped2/videos', 'v1.0')
    >>> parse_dvc_uri("dvc:///srv/repo#data/raw")
    ('/srv/repo', 'data/raw', None)
    """
    repo, hash_sign, fragment = uri[len("dvc://"):].rpartition("#")
    path, at_sign, rev = fragment.rpartition("@") if "@" in fragment else (fragment, "", "")
    path = path.strip("/")
    if not hash_sign or not repo or not path or (at_sign and not rev) or ".." in PurePosixPath(path).parts:
        raise DataError(f"{uri} is not a valid DVC source; use dvc://<repo-url-or-path>#<path>[@<rev>], "
                        "e.g. dvc://https://github.com/org/data#ped2/videos@v1.0")
    return repo, path, rev or None


def _resolve_dvc(uri: str, cache_dir: Path) -> Path:
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException
    from dvc.scm import CloneError, RevError

    repo, path, rev = parse_dvc_uri(uri)
    where = f"{path} in the DVC repository {repo}" + (f" at {rev}" if rev else "")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(path).name).strip("._") or "data"
    target = cache_dir / "dvc" / f"{name}-{hashlib.sha256(uri.encode()).hexdigest()[:12]}"
    fs = None
    try:
        fs = DVCFileSystem(repo, rev=rev)
        fs.repo  # noqa: B018 - opens (clones) the repository now: `exists` would hide a bad repo or rev
        if not fs.exists(path):
            raise DataLayoutError(f"{where} does not exist; fix the path after '#' in {uri}")
        if not fs.isdir(path):
            raise DataLayoutError(f"{where} is a file, not a folder; point the path after '#' at the dataset folder")
        with atomic_dir(target) as tmp:
            fs.get(f"{path}/", f"{tmp}/", recursive=True)
    except VadError:
        raise
    except CloneError:
        raise DataError(f"cannot open or clone the Git repository {repo} of {uri}; check its URL or path and the "
                        "Git credentials") from None
    except RevError:
        raise DataError(f"unknown Git revision {rev!r} of {repo}; fix the part after '@' in {uri}") from None
    except DvcException as error:
        reason = " ".join(str(error).split()) or error.__class__.__name__
        raise DataError(f"cannot read {where} ({reason}); check that the repository exists and is a DVC "
                        "repository, and that its remote is reachable with the configured credentials") from None
    except OSError as error:  # a file listed in the repository but missing from its cache and remote
        reason = " ".join(str(error).split()) or error.__class__.__name__
        raise DataError(f"cannot read {where} ({reason}); run `dvc push` in that repository or check its "
                        "remote") from None
    finally:
        if fs is not None:
            fs.close()
    log.info("%s: %d files into %s", uri, sum(1 for p in target.rglob("*") if p.is_file()), target)
    return target
