"""How long the product waits for a server: one budget, `VAD_NETWORK_TIMEOUT` seconds (default 120).

A server that stops answering is reported within about that time, whatever the client library's own
defaults (MLflow's retry for minutes; boto3's connect and read timeouts add up over attempts). The budget
bounds every wait (connect, each read) and the retries around it, not the length of a transfer that keeps
moving: a large download that streams is never cut.
"""

from __future__ import annotations

import os

from vad.errors import ConfigError

__all__ = ["budget", "configure_mlflow", "s3_config_kwargs", "ENV"]

ENV = "VAD_NETWORK_TIMEOUT"
DEFAULT_SECONDS = 120.0
ATTEMPTS = 3  # one try and two retries, for MLflow and S3 alike


def budget() -> float:
    """Seconds a request to a server may take in all, retries included."""
    text = os.environ.get(ENV, "")
    if not text:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{ENV}={text!r} is not a positive number of seconds; unset it or set e.g. {ENV}=120")
    return value


def configure_mlflow() -> None:
    """Set MLflow's HTTP retry and timeout variables from the budget (variables the user set are kept)."""
    seconds = budget()
    # ATTEMPTS tries of at most `timeout` each, plus backoff sleeps of 1 + 2 s (none for budgets under 20 s).
    slow = seconds >= 20
    timeout = max(1, int((seconds - (3 if slow else 0)) / ATTEMPTS))
    for name, value in (("MLFLOW_HTTP_REQUEST_TIMEOUT", timeout), ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", ATTEMPTS - 1),
                        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1 if slow else 0),
                        ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 1.0 if slow else 0.0)):
        os.environ.setdefault(name, str(value))


def s3_config_kwargs() -> dict:
    """Botocore Config arguments: connect and read timeouts that, over ATTEMPTS tries, fit the budget."""
    seconds = budget()
    return {"connect_timeout": max(1.0, seconds / 12), "read_timeout": max(1.0, seconds / 5)}
