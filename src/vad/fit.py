"""`vad fit`: a folder of footage to a calibrated, registered detector within a time budget.

Survey the footage, extract and validate it, probe this machine, plan the setting (`vad.planning`), then run
pretrain, init-clusters, train and calibrate, score and evaluate where the test videos carry labels, and
register, all in one MLflow run. The output folder holds everything:

    <out>/params.yaml        the plan as a params file (runs unchanged under `dvc repro` or Kubeflow)
    <out>/plan.json          the plan with the footage, the probed costs and the expected time of each stage
    <out>/fit-state.json     the stages done and the seconds spent: a re-run after a kill resumes from it
    <out>/frames/  pretrain/  init/  train/ (the model, with calibration.json)  scores.csv  eval.json  plots/
    <out>/register.json      the registered version and the promotion decision

The budget holds: pretraining stops early when, at the speed it really runs, it would leave too little time for
twice as many alternating epochs (the paper's 1:2 ratio); the alternating epochs are planned again once k-means
is done, and alternating training stops when the next epoch would not fit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vad.atomic import atomic_write_text
from vad.config import Params, load_params, parse_params
from vad.planning import METHOD, STAGE_S, Footage, Plan, format_plan, frame_side, ladder, train_epochs_left

__all__ = ["Budget", "FitResult", "run", "dataset_name", "footage_of", "pretrain_stop_rule", "train_stop_rule"]

log = logging.getLogger(__name__)

STATE = "fit-state.json"
PARAMS = "params.yaml"


@dataclass
class Budget:
    """Seconds of a budget, counting those spent by earlier attempts of the same fit."""

    seconds: float
    spent_before: float = 0.0
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def spent(self) -> float:
        """Seconds spent, earlier attempts included."""
        return self.spent_before + self.clock() - self.started

    def left(self) -> float:
        """Seconds left of the budget (negative once overrun)."""
        return self.seconds - self.spent()


@dataclass(frozen=True)
class FitResult:
    """What a fit wrote and decided."""

    out_dir: Path
    plan: Plan
    params: Params
    registration: dict[str, Any] | None  # None with --plan-only
    metrics: dict[str, Any]


def dataset_name(source: str) -> str:
    """The dataset's name from its source: the last part of the path or URL, made safe for a model name."""
    text = source.rstrip("/")
    if text.startswith("dvc://") and "#" in text:  # dvc://<repo>#<path>[@<rev>]: the folder in the repository
        text = text.split("#", 1)[1].rsplit("@", 1)[0].rstrip("/")
    stem = re.sub(r"\.(tar\.gz|tgz|tar|zip)$", "", text)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(stem).name).strip("-.") or "footage"
    return name


def footage_of(frames_dir: Path, survey: Any, holdout_share: float, clip_len: int) -> Footage:
    """The planner's view of an extracted frame store and the survey of its source."""
    from vad.data.base import Split
    from vad.data.clips import holdout_frames
    from vad.data.store import FrameStore

    store = FrameStore.open(frames_dir)
    train, tests = store.split(Split.TRAIN), store.split(Split.TEST)
    held = [holdout_frames(v.frames, holdout_share) for v in train]
    return Footage(height=survey.height, width=survey.width, gray=survey.gray, fps=survey.fps,
                   train_videos=len(train), train_frames=sum(v.frames for v in train),
                   train_clips=sum(max(0, v.frames - h - clip_len + 1) for v, h in zip(train, held, strict=True)),
                   holdout_frames=sum(held), test_frames=sum(v.frames for v in tests), labelled=store.labelled)


def _base_params(dataset: str, side: int, channels: int, seed: int, device: str, threads: int | None) -> Params:
    """The method's settings at a frame geometry: what the probe builds its networks from."""
    return parse_params({"seed": seed, "device": device, "model": METHOD["model"],
                         "data": {"dataset": dataset, "image_size": [side, side], "channels": channels,
                                  **METHOD["data"]},
                         "train": {k: v for k, v in METHOD["train"].items()}, "perf": {"channels_last": True,
                                                                                      "threads": threads}},
                        "vad fit")


def _write_params(path: Path, document: dict[str, Any], note: str) -> None:
    """Every section written out, defaults too: DVC refuses a params key that its file lacks."""
    document = parse_params(document, "vad fit's plan").model_dump(mode="json", by_alias=True)
    header = ("# Written by `vad fit` (vad.planning; the rule: docs/fit.md). " + note + "\n"
              "# Runs unchanged: `dvc repro` with it as params.yaml, or `vad pipeline submit --preset THIS_FILE`.\n")
    atomic_write_text(path, header + yaml.safe_dump(document, sort_keys=False))


class _State:
    """fit-state.json: the fit it belongs to, the stages done, the seconds spent and the MLflow run."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            document = {}
        self.resumed = document.get("key") == key and bool(document.get("done"))
        self.document = document if self.resumed else {"key": key, "done": {}, "spent_s": 0.0}
        self._last: float | None = None

    @property
    def spent(self) -> float:
        return float(self.document["spent_s"])

    def done(self, stage: str) -> bool:
        return stage in self.document["done"]

    def mark(self, stage: str, budget: Budget, **facts: Any) -> None:
        """Record `stage` as done, with the seconds since the stage before it ended (this attempt's)."""
        now = budget.spent()
        since = budget.spent_before if self._last is None else self._last
        self.document["done"][stage] = {"seconds": round(now - since, 1), **facts}
        self._last = now
        self.save(budget)

    def save(self, budget: Budget) -> None:
        self.document["spent_s"] = round(budget.spent(), 1)
        atomic_write_text(self.path, json.dumps(self.document, indent=1) + "\n")


def run(source: str, out_dir: Path, *, budget_s: float, name: str | None = None, device: str = "auto",
        plan_only: bool = False, seed: int = 0, tracking_uri: str | None = None,
        clock: Callable[[], float] = time.monotonic, progress: bool = False,
        echo: Callable[[str], None] = print) -> FitResult:
    """Fit a detector to the footage at `source` (anything `vad extract` reads) within `budget_s` seconds."""
    from vad import probe
    from vad.data.base import Split
    from vad.data.clips import ClipSource
    from vad.data.sources import resolve_source
    from vad.data.store import FrameStore
    from vad.data.survey import survey
    from vad.planning import plan as make_plan
    from vad.stages import extract, validate
    from vad.training import select_device

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = name or dataset_name(str(source))
    key = hashlib.sha256(json.dumps([str(source), dataset, budget_s, seed, device]).encode()).hexdigest()[:16]
    state = _State(out_dir / STATE, key)
    budget = Budget(budget_s, state.spent, clock)
    if state.resumed:
        log.info("resuming the fit in %s (%.0f s of the budget spent, done: %s)", out_dir, state.spent,
                 ", ".join(state.document["done"]))
    spent: dict[str, float] = dict(state.document.get("spent_by_stage", {}))

    def timed(stage: str, call: Callable[[], Any]) -> Any:
        began = clock()
        result = call()
        spent[stage] = spent.get(stage, 0.0) + clock() - began
        state.document["spent_by_stage"] = {k: round(v, 1) for k, v in spent.items()}
        return result

    local = resolve_source(source, out_dir / ".cache", progress=progress)
    found = timed("survey", lambda: survey(local))
    side, channels = frame_side(found.height, found.width), 1 if found.gray else 3
    selected = select_device(device)
    base = _base_params(dataset, side, channels, seed, device, None)
    frames = out_dir / "frames"
    if not state.done("extract"):
        data = base.data.model_copy(update={"format": found.layout})
        timed("extract", lambda: extract.run(data, local, frames, progress=progress))
        state.mark("extract", budget)
    if not state.done("validate"):
        timed("validate", lambda: validate.run(base.data, frames, out_dir / "validation.json"))
        state.mark("validate", budget)
    footage = footage_of(frames, found, base.detect.holdout_share, base.data.clip_len)

    if state.done("plan"):
        planned = _load_plan(out_dir / "plan.json")
    else:
        store = FrameStore.open(frames)
        probe_clips = ClipSource(store, store.split(Split.TRAIN)[:1], base.data.clip_len, selected)
        threads = timed("probe", lambda: probe.choose_threads(base, ladder(side)[-1], probe_clips, selected))
        base = _base_params(dataset, side, channels, seed, device, threads)

        def measure(geometry, ceiling):
            return timed("probe", lambda: probe.measure(base, geometry, probe_clips, selected, ceiling=ceiling))

        def so_far() -> dict[str, float]:  # by stage; "other": earlier attempts and the time between stages
            return {**spent, "other": budget.spent() - sum(spent.values())}

        planned = make_plan(footage, measure, budget_s, spent=so_far, device=selected.type, threads=threads,
                            default_fps=base.detect.fps)
        atomic_write_text(out_dir / "plan.json", json.dumps({"footage": footage.__dict__, "source": str(source),
                                                             **planned.to_json()}, indent=1, default=str) + "\n")
        _write_params(out_dir / PARAMS, planned.params(dataset, seed), f"Budget {budget_s / 60:g} min.")
        state.mark("plan", budget)
    echo(format_plan(planned, dataset))
    for warning in planned.warnings:
        log.warning("warning: %s", warning)
    params = load_params(out_dir / PARAMS)
    if plan_only:
        return FitResult(out_dir, planned, params, None, {})
    return _train(params, planned, out_dir, frames, state, budget, source=str(source), tracking_uri=tracking_uri,
                  progress=progress, echo=echo, labelled=footage.labelled)


def pretrain_stop_rule(budget: Budget, reserve_s: float, ratio: float) -> Callable[[dict[str, float]], bool]:
    """Stop pretraining when the rest of the budget cannot hold its next epoch and a 1:2 alternating phase.

    At the speed its last epoch ran, the budget less `reserve_s` (k-means and the stages after training) must
    hold the next epoch and twice as many alternating epochs as pretraining ones (the paper's 1:2); `ratio`: an
    alternating epoch's cost over a pretraining one's, as probed.
    """

    def stop(record: dict[str, float]) -> bool:
        needed = record["seconds"] * (1 + 2 * (int(record["epoch"]) + 1) * ratio)
        return budget.left() - reserve_s < needed

    return stop


def train_stop_rule(budget: Budget, reserve_s: float) -> Callable[[dict[str, float]], bool]:
    """Stop alternating training when the next epoch, as long as the last, would eat into `reserve_s`."""
    return lambda record: budget.left() - reserve_s < record["seconds"]


def _load_plan(path: Path) -> Plan:
    from vad.planning import Geometry, StepCosts

    document = json.loads(path.read_text())
    document.pop("footage", None), document.pop("source", None)
    document["geometry"] = Geometry(**document["geometry"])
    document["costs"] = StepCosts(**document["costs"])
    document["warnings"] = tuple(document["warnings"])
    return Plan(**document)


def _train(params: Params, planned: Plan, out_dir: Path, frames: Path, state: _State, budget: Budget, *,
           source: str, tracking_uri: str | None, progress: bool, echo: Callable[[str], None],
           labelled: bool) -> FitResult:
    import torch

    from vad.calibration import CALIBRATION
    from vad.pipeline_run import PipelineRun
    from vad.stages import calibrate, evaluate, init_clusters, pretrain, register, score, train

    if params.perf.threads is not None:  # process-wide: k-means and calibration select their device without perf
        torch.set_num_threads(params.perf.threads)
    expected = planned.expected_s
    after_train = sum(expected.get(k, 0.0) for k in ("calibrate", "score", "evaluate", "register"))
    ratio = planned.costs.train_clip / planned.costs.pretrain_clip
    tracking = PipelineRun.open(params, stage="fit", frames_dir=frames, previous=state.document.get("run_id"),
                                source_uri=source, tracking_uri=tracking_uri)
    state.document["run_id"] = tracking.run_id
    tracking.write(out_dir / "mlflow-run.json")
    state.save(budget)

    pretrain_rule = pretrain_stop_rule(budget, expected.get("init_clusters", STAGE_S) + after_train, ratio)
    train_rule = train_stop_rule(budget, after_train)

    def pretrain_stop(record: dict[str, float]) -> bool:
        state.save(budget)
        return pretrain_rule(record)

    def train_stop(record: dict[str, float]) -> bool:
        state.save(budget)
        return train_rule(record)

    with tracking.stage("fit"):
        tracking.client.set_tag(tracking.run_id, "vad.fit.budget_s", str(planned.budget_s))
        tracking.client.log_artifact(tracking.run_id, str(out_dir / "plan.json"), "fit")
    if not state.done("pretrain"):
        with tracking.stage("pretrain"):
            result = pretrain.run(params, frames, out_dir / "pretrain", progress=progress, tracking=tracking,
                                  should_stop=pretrain_stop)
        epoch_s = [r["seconds"] for r in result.history if "seconds" in r]
        state.mark("pretrain", budget, epochs=len(result.history),
                   epoch_s=round(sorted(epoch_s)[len(epoch_s) // 2], 2) if epoch_s else None)
    if not state.done("init_clusters"):
        with tracking.stage("init_clusters"):
            init_clusters.run(params, frames, out_dir / "pretrain", out_dir / "init", progress=progress)
        state.mark("init_clusters", budget)
    if not state.done("replan"):
        measured = state.document["done"]["pretrain"].get("epoch_s")
        epochs = params.train.epochs
        if measured:
            epochs = train_epochs_left(planned, budget.left(), measured * ratio)
        if epochs < params.train.epochs:
            log.warning("warning: training runs slower than probed: %d alternating epochs instead of %d, to hold "
                        "the budget", epochs, params.train.epochs)
            document = params.model_dump(mode="json", by_alias=True)
            document["train"] |= {"epochs": epochs, "lr_milestones": [epochs]}
            _write_params(out_dir / PARAMS, document, f"Budget {planned.budget_s / 60:g} min; alternating epochs "
                                                      f"planned again after pretraining ({epochs}).")
            params = load_params(out_dir / PARAMS)
            tracking.client.set_tag(tracking.run_id, "vad.fit.train_epochs", str(epochs))
        state.mark("replan", budget, train_epochs=epochs)
    if not state.done("train"):
        with tracking.stage("train"):
            train.run(params, frames, out_dir / "init", out_dir / "train", progress=progress, tracking=tracking,
                      should_stop=train_stop)
        state.mark("train", budget)
    model = out_dir / "train"
    if not state.done("calibrate"):
        with tracking.stage("calibrate"):
            calibrate.run(params, frames, model, model / CALIBRATION)
        state.mark("calibrate", budget)
    metrics: dict[str, Any] = {}
    plots = out_dir / "plots"
    if labelled:
        if not state.done("score"):
            with tracking.stage("score"):
                score.run(params, frames, model, out_dir / "scores.csv", progress=progress)
            state.mark("score", budget)
        if not state.done("evaluate"):
            from vad.calibration import Calibration

            with tracking.stage("evaluate"):
                evaluate.run(frames, out_dir / "scores.csv", out_dir / "eval.json", plots,
                             calibration=Calibration.load(model / CALIBRATION), detect=params.detect)
            state.mark("evaluate", budget)
        metrics = json.loads((out_dir / "eval.json").read_text())
    if not state.done("register"):
        register.run(params, frames, out_dir / "pretrain", model, out_dir / "eval.json" if labelled else None, plots,
                     out_dir / "register.json", tracking=tracking, calibration_path=model / CALIBRATION,
                     artifacts=[out_dir / PARAMS, out_dir / "plan.json", out_dir / "validation.json"])
        state.mark("register", budget)
    registration = json.loads((out_dir / "register.json").read_text())
    name, version = registration["model_name"], registration["version"]
    uri = f"models:/{name}@{params.registry.alias}" if registration["promoted"] else f"models:/{name}/{version}"
    figures = (f"micro AUC {metrics['auc_micro']:.4f}, " if "auc_micro" in metrics else "no test labels, ")
    echo(f"fit done in {budget.spent() / 60:.1f} min of a {planned.budget_s / 60:g} min budget: {figures}"
         f"{name} v{version} ({registration['reason']})")
    echo(f"detect with it:\n  vad detect VIDEO_OR_CAMERA --model {uri}")
    return FitResult(out_dir, planned, params, registration, metrics)
