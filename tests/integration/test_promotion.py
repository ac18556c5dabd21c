"""Promotion under concurrency, and a server that stops answering, against real servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import random
import subprocess
import sys
import threading
import uuid

import mlflow

RACERS = 3
ROUNDS = 20

# A promoter process: reads "name version delay" lines, sleeps `delay`, promotes, answers one JSON line.
RACER = """
import json, sys, time
from vad.tracking import MlflowTracker
tracker = MlflowTracker(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    name, version, delay = line.split()
    time.sleep(float(delay))
    decision = tracker.promote(name, version)
    print(json.dumps({"version": version, "promoted": decision.promoted, "reason": decision.reason}), flush=True)
"""


def test_racing_promoters_always_leave_the_champion_on_the_best_version(mlflow_server):
    client = mlflow.MlflowClient(mlflow_server)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, mlflow_server], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env) for _ in range(RACERS)]
    rng = random.Random(0)
    run = client.create_run(client.create_experiment(f"race-{uuid.uuid4().hex[:6]}")).info
    source = {"source": f"{run.artifact_uri}/model", "run_id": run.run_id}
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready"
        for round_ in range(ROUNDS):
            name = f"race-{round_}-{uuid.uuid4().hex[:6]}"
            client.create_registered_model(name)
            aucs = rng.sample([0.6, 0.7, 0.8, 0.9], RACERS) if round_ % 4 else [0.8, 0.8, 0.7]  # ties too
            fingerprint = "a" * 64
            for auc in aucs:
                version = client.create_model_version(name, **source).version
                client.set_model_version_tag(name, version, "auc_micro", str(auc))
                client.set_model_version_tag(name, version, "data_fingerprint", fingerprint)
            if round_ % 2:  # a champion from before the race, the worst of all
                worst = client.create_model_version(name, **source).version
                client.set_model_version_tag(name, worst, "auc_micro", "0.1")
                client.set_model_version_tag(name, worst, "data_fingerprint", fingerprint)
                client.set_registered_model_alias(name, "champion", worst)
            for racer, version in zip(racers, range(1, RACERS + 1), strict=True):
                racer.stdin.write(f"{name} {version} {rng.uniform(0, 0.12):.3f}\n")
                racer.stdin.flush()
            decisions = [json.loads(racer.stdout.readline()) for racer in racers]
            best = str(max(range(RACERS), key=lambda i: (aucs[i], -i)) + 1)
            champion = client.get_model_version_by_alias(name, "champion").version
            assert champion == best, (round_, aucs, decisions)
            for decision in decisions:
                if decision["version"] == best:
                    assert decision["promoted"] and "is now @champion" in decision["reason"], decision
                elif not decision["promoted"]:
                    assert "does not beat @champion v" in decision["reason"], decision
    finally:
        for racer in racers:
            racer.stdin.close()
            racer.kill()
            racer.wait()


class _Hanging(http.server.BaseHTTPRequestHandler):
    """Answers MLflow's health check, then never answers anything else (a server that hung)."""

    release = threading.Event()

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/health"):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
        else:
            self.release.wait(300)

    do_POST = do_PATCH = do_DELETE = do_GET

    def log_message(self, format, *args):
        pass


def test_a_server_that_stops_answering_is_one_line_and_exit_2_within_the_budget(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hanging)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "VAD_NETWORK_TIMEOUT": "3"}
        for name in [k for k in env if k.startswith("MLFLOW_HTTP_REQUEST")]:
            del env[name]
        # The guard only keeps a regression from hanging the suite; the budget under test is 3 s.
        done = subprocess.run([sys.executable, "-m", "vad", "promote", "vad-x", "1"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)
    finally:
        _Hanging.release.set()
        server.shutdown()
        server.server_close()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: MLflow server {uri} stopped answering (3 tries within VAD_NETWORK_TIMEOUT=3 s)")


def test_promotion_with_a_local_sqlite_store_as_make_run_uses(tmp_path):
    """The sqlite store gives model versions as integers where the server gives strings: same decisions."""
    from vad.tracking import MlflowTracker

    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client, name = tracker.client, "vad-local"
    client.create_registered_model(name)
    expected = {"0.8": (True, "no champion yet"), "0.7": (False, "does not beat"), "0.9": (True, "beats")}
    for version, (auc, (promoted, why)) in enumerate(expected.items(), start=1):
        client.create_model_version(name, source=str(tmp_path))
        client.set_model_version_tag(name, str(version), "auc_micro", auc)
        client.set_model_version_tag(name, str(version), "data_fingerprint", "a" * 64)
        decision = tracker.promote(name, version)
        assert decision.promoted is promoted and why in decision.reason, decision.reason
    assert str(client.get_model_version_by_alias(name, "champion").version) == "3"
    assert "already holds" in tracker.promote(name, 3).reason
