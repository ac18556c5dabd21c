"""The planning rule of `vad fit`: from the footage and the step costs measured on this machine, a setting.

Pure arithmetic, no torch: the probe (`vad.probe`) measures, this module decides, `vad.fit` runs. The rule
and what it assumes are written out in docs/fit.md; it names no dataset. In short:

1. The method stays the paper's (T = 5, K = 32, alpha = 25, lambda_r = 0.1, batch 8, Adam), with the losses,
   cluster term and Adam schedule this product adopted (`METHOD`).
2. Channels: 1 when the footage is gray, else 3. Frame: the paper's 256 x 256, or 128 / 64 for footage whose
   shorter side is below 128 / 64 pixels (no upscaling beyond 2x).
3. Geometry: the first rung of a ladder ordered from the paper's (whole frame, width 32) down to tiles of half
   the frame side at width 8 (the paper's pixel scale at a quarter of the cost) at which at least a fifth of
   the paper's 150 epochs fits the training time. Below the last rung, epochs are random samples of the clips.
4. Epochs: as many as fit, at most the paper's 150, in its 1:2 ratio of pretraining to alternating epochs;
   learning rates the paper's times 150 / epochs (one significant digit), the step to a tenth at the last
   alternating epoch as in the paper.
5. The training time is the budget less the measured stages before training, the estimated ones after it,
   and a tenth to spare. When training runs slower than planned, `train_epochs_left` plans again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Footage", "Geometry", "StepCosts", "Plan", "METHOD", "frame_side", "ladder", "plan",
           "train_epochs_left", "paper_lr", "format_plan"]

PAPER_EPOCHS = (50, 100)  # pretraining, alternating (Sec. 4.2)
PAPER_LR, PAPER_CENTER_LR = 1e-4, 1e-5
PAPER_WIDTH = 32
BATCH = 8
MIN_SHARE = 0.2  # at least a fifth of the paper's epochs (docs/fit.md, rule 3)
SPARE = 0.1  # a tenth of the training time to spare (docs/fit.md, rule 4)
KMEANS_SAMPLE = 2000  # clips whose latents k-means++ samples, at most (init_clusters.sample_clips default)
# Costs the probe does not measure, in seconds: estimates, corrected by re-planning when they are off.
STAGE_S = 10.0  # each stage's start-up: model build, frames into memory
EPOCH_S = 0.5  # each epoch besides its steps: the checkpoint
REGISTER_S = 40.0  # MLflow: logging the model and its signature, registration
MIN_EPOCHS = 3  # 1 + 2: the smallest run there is

# Everything the method defines, as the product adopted it (docs/fit.md, rule 1): never planned.
METHOD: dict[str, dict[str, Any]] = {
    "data": {"clip_len": 5, "tile_overlap": True},
    "model": {"appearance": True, "motion": True, "attention": True, "kmeans": True, "clusters": 32,
              "alpha": 25.0, "w_grad": 0.01, "gradient_on": "frame", "motion_decoder": "authors",
              "cluster_distance": "euclidean", "cluster_reduction": "mean"},
    "pretrain": {"batch_size": BATCH},
    "init_clusters": {"max_vectors": 200_000, "batch_size": BATCH},
    "train": {"batch_size": BATCH, "lr_gamma": 0.1, "lambda_r": 0.1, "continue_adam": True},
    "score": {"batch_size": 64, "cluster_distance": "model"},
}


@dataclass(frozen=True)
class Footage:
    """What the rule reads of the footage: its native frames, and the clips the frame store makes of them."""

    height: int
    width: int
    gray: bool
    fps: float | None  # None: the footage does not say (frame folders)
    train_videos: int
    train_frames: int
    train_clips: int  # training clips once the hold-out is set aside
    holdout_frames: int  # frames held out of training, for calibration
    test_frames: int = 0
    labelled: bool = False  # the test videos carry labels: score and evaluate run


@dataclass(frozen=True)
class Geometry:
    """What the network sees: the frame, its tile (None: the whole frame) and the network's width."""

    side: int
    tile: int | None
    width: int

    @property
    def window(self) -> int:
        """The side of what the network sees at once."""
        return self.tile or self.side

    def windows_per_frame(self, overlap: bool = True) -> int:
        """Network windows that score one frame: tiles at half a tile's stride when `overlap` (data.tile_overlap)."""
        if self.tile is None:
            return 1
        per_side = self.side // self.tile
        return (2 * per_side - 1) ** 2 if overlap else per_side ** 2

    def describe(self) -> str:
        """One line for logs and the plan table."""
        seen = f"tiles {self.tile}x{self.tile}" if self.tile else "whole frame"
        return f"{self.side}x{self.side}, {seen}, width {self.width}"


@dataclass(frozen=True)
class StepCosts:
    """Seconds per clip measured by the probe at one geometry (warm steps of batch 8)."""

    pretrain_clip: float  # L_a + L_m step
    train_clip: float  # alternating step: with the cluster loss and the centers' step
    forward_window: float  # forward pass without gradients, one clip of one window (scoring, k-means)

    def frame(self, geometry: Geometry) -> float:
        """Scoring one frame: every window of it."""
        return self.forward_window * geometry.windows_per_frame()


@dataclass(frozen=True)
class Plan:
    """The chosen setting and the time each stage is expected to take."""

    geometry: Geometry
    channels: int
    pretrain_epochs: int
    train_epochs: int
    clips_per_epoch: int | None  # None: every training clip
    lr: float
    center_lr: float
    sample_clips: int
    pooling: str
    fps: float
    threads: int | None
    device: str
    budget_s: float
    expected_s: dict[str, float]
    costs: StepCosts
    fraction: float  # share of the paper's 150 epochs over every clip
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def epochs(self) -> int:
        """Both phases' epochs."""
        return self.pretrain_epochs + self.train_epochs

    def params(self, dataset: str, seed: int = 0) -> dict[str, Any]:
        """The plan as a params document (`vad.config.parse_params` validates it)."""
        g = self.geometry
        return {
            "seed": seed,
            "device": self.device,
            "data": {"dataset": dataset, "format": "auto", "image_size": [g.side, g.side],
                     "tile": None if g.tile is None else [g.tile, g.tile], "channels": self.channels,
                     **METHOD["data"]},
            "model": {"width": g.width, **METHOD["model"]},
            "pretrain": {"epochs": self.pretrain_epochs, "max_clips_per_epoch": self.clips_per_epoch,
                         "lr": self.lr, **METHOD["pretrain"]},
            "init_clusters": {"sample_clips": self.sample_clips, **METHOD["init_clusters"]},
            "train": {"epochs": self.train_epochs, "max_clips_per_epoch": self.clips_per_epoch, "lr": self.lr,
                      "lr_milestones": [self.train_epochs], "center_lr": self.center_lr, **METHOD["train"]},
            "score": METHOD["score"],
            "detect": {"fps": self.fps, "map": "prediction", "pooling": self.pooling},
            "perf": {"threads": self.threads, "channels_last": True},
        }

    def to_json(self) -> dict[str, Any]:
        """The plan as plan.json holds it."""
        return {**asdict(self), "warnings": list(self.warnings)}


def frame_side(height: int, width: int) -> int:
    """The paper's 256, unless the footage is so small that it would be upscaled more than twice."""
    shorter = min(height, width)
    return 256 if shorter >= 128 else 128 if shorter >= 64 else 64


def ladder(side: int) -> list[Geometry]:
    """Geometries from the paper's down, each cheaper than the one before (docs/fit.md)."""
    rungs = [Geometry(side, None, PAPER_WIDTH), Geometry(side, None, 16)]
    half = side // 2
    if half >= 64:  # a tile smaller than 64 sees too little scene (and tile_overlap needs multiples of 32)
        rungs += [Geometry(side, half, 16), Geometry(side, half, 8)]
    else:
        rungs += [Geometry(side, None, 8)]
    return rungs


def paper_lr(epochs: int) -> tuple[float, float]:
    """The paper's learning rates times 150 / epochs, to one significant digit (docs/fit.md, rule 4)."""
    factor = sum(PAPER_EPOCHS) / epochs
    return float(f"{PAPER_LR * factor:.0e}"), float(f"{PAPER_CENTER_LR * factor:.0e}")


def _split(epochs: int) -> tuple[int, int]:
    """The paper's 1:2 ratio of pretraining to alternating epochs."""
    pre = max(1, epochs // 3)
    return pre, max(1, epochs - pre)


def _training_s(costs: StepCosts, clips: int, pre: int, alt: int) -> float:
    return (2 * STAGE_S + pre * (clips * costs.pretrain_clip + EPOCH_S)
            + alt * (clips * costs.train_clip + EPOCH_S))


def _most_epochs(costs: StepCosts, clips: int, seconds: float) -> int:
    """The most epochs (at most the paper's) of `clips` clips that fit `seconds`; 0 when not even 1 + 2 do."""
    for epochs in range(sum(PAPER_EPOCHS), MIN_EPOCHS - 1, -1):
        if _training_s(costs, clips, *_split(epochs)) <= seconds:
            return epochs
    return 0


def _after_training_s(footage: Footage, geometry: Geometry, costs: StepCosts) -> dict[str, float]:
    frame = costs.frame(geometry)
    expected = {"calibrate": STAGE_S + footage.holdout_frames * frame}
    if footage.labelled:
        expected |= {"score": STAGE_S + footage.test_frames * frame, "evaluate": STAGE_S}
    return expected | {"register": REGISTER_S}


def plan(footage: Footage, measure: Callable[[Geometry, float], StepCosts], budget_s: float, *,
         spent: Callable[[], Mapping[str, float]] = dict, device: str = "cpu", threads: int | None = None,
         default_fps: float = 25.0) -> Plan:
    """Choose the setting for `footage` within `budget_s` seconds.

    `measure(geometry, ceiling)` probes a geometry's step costs; it is called best rung first, and no further than
    the first rung that fits, so a fast machine never pays for probing the cheap ones. `ceiling` is the cost per
    clip above which the rung cannot fit whatever the other stages cost (infinite for the last rung).
    `spent()`: the seconds already gone, by stage (the probes included), read after each probe.
    """
    warnings: list[str] = []
    side = frame_side(footage.height, footage.width)
    clips = footage.train_clips
    rungs = ladder(side)
    needed = math.ceil(MIN_SHARE * sum(PAPER_EPOCHS))
    chosen = None
    for geometry in rungs:
        last = geometry == rungs[-1]
        room = (budget_s - sum(spent().values())) * (1 - SPARE)
        costs = measure(geometry, math.inf if last else room / (needed * clips))
        left = budget_s - sum(spent().values())
        sample = min(KMEANS_SAMPLE, clips)
        before = {"init_clusters": STAGE_S + sample * costs.frame(geometry)}
        after = _after_training_s(footage, geometry, costs)
        training = (left - sum(before.values()) - sum(after.values())) * (1 - SPARE)
        epochs = _most_epochs(costs, clips, training)
        chosen = (geometry, costs, before, after, training, epochs)
        if epochs >= needed:
            break
    geometry, costs, before, after, training, epochs = chosen
    per_epoch = None
    if epochs < needed:
        # The cheapest rung and still short of a fifth of the paper's epochs: each epoch is a random sample of
        # the clips (a new one each epoch), the most that let that fifth fit; at least one batch. k-means samples
        # at most one epoch's clips, so fewer clips an epoch also leave more room: the most that fit, searched.
        pre, alt = _split(needed)

        def init_s(per_epoch: int) -> float:
            return STAGE_S + min(KMEANS_SAMPLE, per_epoch) * costs.frame(geometry)

        def fits(per_epoch: int) -> bool:
            room = (left - init_s(per_epoch) - sum(after.values())) * (1 - SPARE)
            return _training_s(costs, per_epoch, pre, alt) <= room

        low, high = BATCH, clips  # the largest count that fits: `fits` only turns false as the count grows
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle) else (low, middle - 1)
        per_epoch = low
        sample = min(KMEANS_SAMPLE, per_epoch)
        before = {"init_clusters": init_s(per_epoch)}
        training = (left - before["init_clusters"] - sum(after.values())) * (1 - SPARE)
        epochs = needed
        if not fits(BATCH):
            epochs = max(MIN_EPOCHS, _most_epochs(costs, per_epoch, training))
            warnings.append(f"a budget of {budget_s / 60:.0f} min is too short for this footage on this machine: "
                            f"{epochs} epochs of {per_epoch} clips may overrun it; give a longer --budget")
    pre, alt = _split(epochs)
    lr, center_lr = paper_lr(pre + alt)
    shown = per_epoch or clips
    expected = {**spent(), "pretrain": STAGE_S + pre * (shown * costs.pretrain_clip + EPOCH_S), **before,
                "train": STAGE_S + alt * (shown * costs.train_clip + EPOCH_S), **after}
    warnings += _small_footage(footage, fps := footage.fps or default_fps)
    if footage.fps is None:
        warnings.append(f"the footage does not say its frame rate: alarm rates assume {default_fps:g} frames/s "
                        "(set detect.fps in the params file)")
    return Plan(geometry=geometry, channels=1 if footage.gray else 3, pretrain_epochs=pre, train_epochs=alt,
                clips_per_epoch=per_epoch, lr=lr, center_lr=center_lr, sample_clips=sample,
                # the worst 2x2-cell window where the frame is a grid of at least 16 cells a side, where one object
                # is a small part of it; the mean of a coarse grid (docs/fit.md, rule 6)
                pooling="window" if side // 8 >= 16 else "mean", fps=fps, threads=threads, device=device,
                budget_s=budget_s, expected_s={k: round(v, 1) for k, v in expected.items()}, costs=costs,
                fraction=round((pre + alt) * shown / (sum(PAPER_EPOCHS) * clips), 4), warnings=tuple(warnings))


def _small_footage(footage: Footage, fps: float) -> list[str]:
    """One line on what little footage costs: a model of few clips, a threshold from a short hold-out."""
    minutes = footage.train_frames / fps / 60
    if footage.train_clips >= 100 * BATCH and footage.holdout_frames >= 60 * fps:
        return []
    return [f"little footage ({minutes:.1f} min, {footage.train_clips} training clips, "
            f"{footage.holdout_frames / fps:.0f} s held out): the model sees few scenes and the threshold "
            "extrapolates its tail from a short hold-out; an hour of normal footage gives both their footing"]


def train_epochs_left(plan_: Plan, seconds_left: float, train_epoch_s: float) -> int:
    """The alternating epochs of `plan_` that fit `seconds_left` at `train_epoch_s` each (at least 1).

    Called once pretraining and k-means are done, with the epoch time their real speed implies.
    """
    after = sum(plan_.expected_s.get(k, 0.0) for k in ("calibrate", "score", "evaluate", "register"))
    room = seconds_left - after - STAGE_S
    return min(plan_.train_epochs, max(1, math.floor(room / max(train_epoch_s, 1e-9))))


def format_plan(plan_: Plan, dataset: str) -> str:
    """The plan as the table `vad fit` prints before training."""
    g = plan_.geometry
    per_epoch = f"{plan_.clips_per_epoch} (a random sample each epoch)" if plan_.clips_per_epoch else "all"
    rows = [
        ("dataset", dataset),
        ("device", f"{plan_.device}" + (f", {plan_.threads} thread(s)" if plan_.threads else "")),
        ("frame", f"{g.side}x{g.side}, {plan_.channels} channel(s)"),
        ("network window", f"tiles {g.tile}x{g.tile} (overlapping at scoring)" if g.tile else "whole frame"),
        ("width", f"{g.width} (paper: {PAPER_WIDTH})"),
        ("epochs", f"{plan_.pretrain_epochs} pretraining + {plan_.train_epochs} alternating (paper: 50 + 100)"),
        ("clips per epoch", per_epoch),
        ("learning rates", f"{plan_.lr:g} autoencoders, {plan_.center_lr:g} centers (paper: 1e-4, 1e-5)"),
        ("k-means sample", f"{plan_.sample_clips} clips"),
        ("alarm score", f"prediction error, {plan_.pooling} pooling, at {plan_.fps:g} frames/s"),
        ("step cost", f"{1 / plan_.costs.pretrain_clip:.1f} clips/s pretraining, "
                      f"{1 / plan_.costs.train_clip:.1f} alternating"),
    ]
    width = max(len(key) for key, _ in rows)
    lines = [f"plan for a budget of {plan_.budget_s / 60:.0f} min ({plan_.fraction:.1%} of the paper's schedule):"]
    lines += [f"  {key:<{width}}  {value}" for key, value in rows]
    lines.append("  expected time: " + ", ".join(f"{k} {v:.0f} s" for k, v in plan_.expected_s.items())
                 + f"; total {sum(plan_.expected_s.values()) / 60:.1f} min")
    return "\n".join(lines)
