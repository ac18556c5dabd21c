"""MLflow: one run per pipeline execution, the model registry and the champion alias.

mlflow is imported lazily, here and in `vad.serving` only. The tracking URI comes from MLFLOW_TRACKING_URI,
else `sqlite:///mlflow.db` in the working directory (the project root under DVC).
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vad.errors import TrackingError

__all__ = ["MlflowTracker", "Decision", "tracking_uri"]

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
    # MLflow's client retries for minutes against a dead server; fail fast with one clear line instead.
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).close()
    except (urllib.error.URLError, OSError) as error:
        raise TrackingError(f"MLflow server {uri} is unreachable ({getattr(error, 'reason', error)}); start it or "
                            f"set MLFLOW_TRACKING_URI to a running server (trained model files are kept)") from None


class MlflowTracker:
    """Thin wrapper over the MLflow client for the calls the pipeline makes."""

    def __init__(self, uri: str | None = None) -> None:
        import mlflow

        self.uri = uri or tracking_uri()
        _check_reachable(self.uri)
        mlflow.set_tracking_uri(self.uri)
        self.mlflow = mlflow
        self.client = mlflow.MlflowClient(self.uri)

    def champion(self, name: str, alias: str) -> Any | None:
        """The model version holding `alias`, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def promote(self, name: str, version: str | int, *, alias: str = "champion", force: bool = False) -> Decision:
        """Move `alias` to `version` if its micro AUC beats the current holder's on the same data fingerprint."""
        from mlflow.exceptions import MlflowException

        try:
            candidate = self.client.get_model_version(name, str(version))
        except MlflowException as error:
            raise TrackingError(f"model {name} version {version} not found ({error.error_code}); "
                                f"list versions in the MLflow UI") from None
        current = self.champion(name, alias)
        if current is not None and current.version == candidate.version:
            return Decision(True, f"{name} v{version} already holds @{alias}")
        reason = self._compare(name, candidate, current, alias)
        if reason and not force:
            log.info("not promoted: %s", reason)
            return Decision(False, f"not promoted: {reason}")
        self.client.set_registered_model_alias(name, alias, str(candidate.version))
        why = "forced" if force and reason else ("no champion yet" if current is None else "beats the champion")
        message = f"{name} v{candidate.version} is now @{alias} ({why})"
        log.info(message)
        return Decision(True, message)

    @staticmethod
    def _compare(name: str, candidate: Any, current: Any | None, alias: str) -> str:
        """Why `candidate` should not replace `current` ('' when it should)."""
        if current is None:
            return ""
        if "auc_micro" not in candidate.tags:
            return f"{name} v{candidate.version} carries no auc_micro tag; use --force to promote it anyway"
        if current.tags.get("data_fingerprint") != candidate.tags.get("data_fingerprint"):
            return (f"@{alias} (v{current.version}) was evaluated on other data (fingerprint "
                    f"{current.tags.get('data_fingerprint', '?')[:12]} vs "
                    f"{candidate.tags.get('data_fingerprint', '?')[:12]}); "
                    f"AUCs are not comparable, use --force to promote anyway")
        new, old = float(candidate.tags["auc_micro"]), float(current.tags.get("auc_micro", "-inf"))
        if new <= old:
            return f"micro AUC {new:.4f} does not beat @{alias} v{current.version} ({old:.4f})"
        return ""
