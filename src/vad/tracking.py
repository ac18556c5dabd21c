"""MLflow: one run per pipeline execution, the model registry and the champion alias.

mlflow is imported lazily, here and in `vad.serving` only. The tracking URI comes from MLFLOW_TRACKING_URI,
else `sqlite:///mlflow.db` in the working directory (the project root under DVC).
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vad.errors import TrackingError
from vad.network import ATTEMPTS, ENV, budget, configure_mlflow

__all__ = ["MlflowTracker", "Decision", "tracking_uri", "mlflow_error"]

log = logging.getLogger(__name__)


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else a sqlite database in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


@dataclass(frozen=True)
class Decision:
    """The outcome of a promotion attempt."""

    promoted: bool
    reason: str


def _check_reachable(uri: str) -> None:
    # MLflow's client retries against a dead server; fail fast with one clear line instead.
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=min(10.0, budget())).close()
    except (urllib.error.URLError, OSError) as error:
        raise TrackingError(f"MLflow server {uri} is unreachable ({getattr(error, 'reason', error)}); start it or "
                            f"set MLFLOW_TRACKING_URI to a running server (trained model files are kept)") from None


def mlflow_error(uri: str, error: BaseException, keep: str = "") -> TrackingError:
    """One line for a failed MLflow call: a server that stopped answering, or the server's refusal."""
    text = " ".join(str(getattr(error, "message", error)).split())
    if any(sign in text for sign in ("Max retries exceeded", "timed out", "Read timed out", "Connection refused",
                                     "Connection aborted", "RemoteDisconnected")):
        what = (f"MLflow server {uri} stopped answering ({ATTEMPTS} tries within {ENV}={budget():g} s); "
                f"check the server, or raise {ENV}")
    else:
        what = f"MLflow at {uri} refused the request: {text[:300]}"
    return TrackingError(what + (f"; {keep}" if keep else ""))


class MlflowTracker:
    """Thin wrapper over the MLflow client for the calls the pipeline makes.

    Every call to the server is bounded by VAD_NETWORK_TIMEOUT (`vad.network`); a failure is a TrackingError.
    """

    def __init__(self, uri: str | None = None) -> None:
        configure_mlflow()  # before mlflow reads its HTTP variables
        import mlflow

        self.uri = uri or tracking_uri()
        _check_reachable(self.uri)
        mlflow.set_tracking_uri(self.uri)
        self.mlflow = mlflow
        self.client = mlflow.MlflowClient(self.uri)

    @contextmanager
    def calls(self, keep: str = "") -> Iterator[None]:
        """Turn MLflow and HTTP failures inside the block into one TrackingError naming the server."""
        import requests
        from mlflow.exceptions import MlflowException

        try:
            yield
        except (MlflowException, requests.RequestException) as error:
            raise mlflow_error(self.uri, error, keep) from None

    def champion(self, name: str, alias: str) -> Any | None:
        """The model version holding `alias`, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def promote(self, name: str, version: str | int, *, alias: str = "champion", force: bool = False) -> Decision:
        """Move `alias` to the best contender, `version` now among them; correct under concurrent promoters.

        Rule: the alias holds the contender with the highest `auc_micro` tag among those evaluated on the same
        data as the first contender (`data_fingerprint` tag); ties go to the earlier version.

        Protocol, with the MLflow client alone: (1) tag `version` as a contender for `alias` (`--force`
        first removes every other version's contender tag, so it starts a new line of champions); (2) read
        the contenders, then the alias, then the contenders again; if both reads agree and the alias is on
        their best, stop; else set the alias to that best and go back to (2). Contender tags are only
        added (outside `--force`), and every write of the alias is followed by a read by the same process
        before it returns, so the process that returns last has read, after every tag and every write, an
        alias on the best of all contenders: when all promoters have returned, the alias is right whatever
        the interleaving. Each message says what the returning read saw.
        """
        from mlflow.exceptions import MlflowException

        version, last_error = str(version), None
        with self.calls():
            candidate = self._version(name, version)
            mark = _contender_tag(alias)
            if force:
                for other in self._versions(name):
                    if str(other.version) != version and mark in other.tags:
                        self._untag(name, other.version, mark)
            current = self.champion(name, alias)
            if current is not None and mark not in current.tags and not force:
                self._tag(name, current.version, mark)  # a champion from before contenders
            if force or mark not in candidate.tags:
                self._tag(name, version, mark)
            for _ in range(_SETTLE_ROUNDS):
                contenders = self._contenders(name, mark)
                holder = self.champion(name, alias)
                if _keys(contenders) != _keys(self._contenders(name, mark)):
                    continue
                best = _best(contenders)
                if holder is not None and str(holder.version) == str(best.version):
                    break
                try:
                    self.client.set_registered_model_alias(name, alias, best.version)
                except MlflowException as error:  # a concurrent first alias collides in the server's insert
                    last_error = error
            else:
                raise last_error if last_error is not None else TrackingError(
                    f"@{alias} of {name} kept changing under {_SETTLE_ROUNDS} rounds of promotion; re-run")
        # str(): the REST store gives versions as strings, the sqlite and file stores as integers
        won = str(best.version) == version
        if won and current is not None and str(current.version) == version and not force:
            message = f"{name} v{version} already holds @{alias}"
        elif won:
            why = "forced" if force else ("no champion yet" if current is None else "beats the champion")
            message = f"{name} v{version} is now @{alias} ({why})"
        else:
            message = f"not promoted: {_why_not(name, candidate, best, alias)}"
        log.info(message)
        return Decision(won, message)

    def _version(self, name: str, version: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name, version)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise TrackingError(f"model {name} version {version} not found ({error.error_code}); "
                                    f"list versions in the MLflow UI") from None
            raise

    def _tag(self, name: str, version: str, mark: str) -> None:
        """Set a contender tag; another promoter setting the same one at the same moment is no failure."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.set_model_version_tag(name, version, mark, "true")
        except MlflowException:  # the server's upsert is a read then an insert: concurrent ones collide
            if self.client.get_model_version(name, version).tags.get(mark) != "true":
                raise

    def _untag(self, name: str, version: str, mark: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_model_version_tag(name, version, mark)
        except MlflowException:
            if mark in self.client.get_model_version(name, version).tags:
                raise

    def _versions(self, name: str) -> list[Any]:
        found, token = [], None
        while True:
            page = self.client.search_model_versions(f"name = '{name}'", max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def _contenders(self, name: str, mark: str) -> list[Any]:
        return sorted((v for v in self._versions(name) if mark in v.tags), key=lambda v: int(v.version))


_SETTLE_ROUNDS = 100  # each round is three reads; only a storm of promoters needs more than a few


def _contender_tag(alias: str) -> str:
    return f"vad.contender.{alias}"


def _keys(versions: list[Any]) -> list[tuple]:
    return [(str(v.version), v.tags.get("auc_micro"), v.tags.get("data_fingerprint")) for v in versions]


def _auc(version: Any) -> float:
    try:
        return float(version.tags["auc_micro"])
    except (KeyError, ValueError):
        return float("-inf")


def _best(contenders: list[Any]) -> Any:
    """The first contender sets the data; the highest AUC on that data wins, the earlier version on ties."""
    data = contenders[0].tags.get("data_fingerprint")
    same = [v for v in contenders if v.tags.get("data_fingerprint") == data]
    return max(same, key=lambda v: (_auc(v), -int(v.version)))


def _why_not(name: str, candidate: Any, best: Any, alias: str) -> str:
    if "auc_micro" not in candidate.tags:
        return f"{name} v{candidate.version} carries no auc_micro tag; use --force to promote it anyway"
    if best.tags.get("data_fingerprint") != candidate.tags.get("data_fingerprint"):
        return (f"@{alias} (v{best.version}) was evaluated on other data (fingerprint "
                f"{best.tags.get('data_fingerprint', '?')[:12]} vs "
                f"{candidate.tags.get('data_fingerprint', '?')[:12]}); "
                f"AUCs are not comparable, use --force to promote anyway")
    return (f"micro AUC {_auc(candidate):.4f} does not beat @{alias} v{best.version} ({_auc(best):.4f})")
