"""Deterministic synthetic surveillance dataset: a fixed camera over a walkway, like UCSD Ped2.

`generate` writes the `videos` layout (see `vad.data.videos`)::

    <out_dir>/
      train/01.avi, 02.avi, ...   normal videos: 2-4 pedestrians walking along the walkway
      test/01.avi, 02.avi, ...    normal pedestrians plus exactly one anomaly event each
      labels.csv                  video,start,end (abnormal interval, 0-based inclusive; video = stem)

Videos are MJPG in AVI, 3-channel BGR of grayscale content. Every video of a seed shares one static,
smoothly textured background with a lighter horizontal walkway band. Test video `i` (0-based) holds one
anomaly, the kinds of `synth.anomalies` in turn (default: all three of `ANOMALY_KINDS`):

- ``appearance``: a bright cart (wide rectangle with dark wheels, ~3x a pedestrian's area) moving along
  the walkway at walking speed;
- ``motion_fast``: a normal-looking pedestrian moving 5x faster along the walkway;
- ``motion_across``: a normal-looking pedestrian crossing the walkway from top to bottom, 6x walking speed.

Sizes and speeds scale with the frame height (given here at height 96): pedestrians are ~5x12 px plus a
head and legs and walk at 1-1.5 px/frame. An anomaly enters after the first 20% of the frames and has
left before the last 15%. When the video is too short for that at the nominal speed, the object moves at
the slowest speed that fits: at 96x128 the cart passes at walking speed only from about 160-240 frames
(it runs ~2.3x faster at 80 frames). A frame is abnormal when the anomalous object covers any pixel of
it, computed from its render mask.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vad.atomic import atomic_write_text
from vad.config import SynthParams

__all__ = ["generate", "anomaly_kind", "ANOMALY_KINDS"]

log = logging.getLogger(__name__)

ANOMALY_KINDS = ("appearance", "motion_fast", "motion_across")
_WALKWAY = (0.14, 0.86)  # walkway (a plaza): pedestrians use most of the height, fractions of it
_SUPERSAMPLE = 4  # sub-samples per pixel side for anti-aliased coverage
_NOISE_SIGMA = 1.0  # sensor noise, grey levels
_FAST = 5.0  # speed factor of the motion_fast anomaly
_ACROSS = 6.0  # crossing speed, multiples of the walking speed (fast and off the path)
_HEAD, _TAIL = 0.20, 0.15  # fractions of frames kept normal at the start / end of a test video
_MIN_VISIBLE = 10  # frames an anomaly stays in view when the window allows
_PED_HALF_WIDTH = 5.0  # pedestrian half-width incl. swinging legs, pixels at height 96

_Prim = tuple[str, float, float, float, float]  # (ellipse|rect, cx, cy, rx, ry), pixels


def anomaly_kind(index: int, kinds: tuple[str, ...] = ANOMALY_KINDS) -> str:
    """Kind of anomaly in test video `index` (0-based): `kinds` in turn."""
    return kinds[index % len(kinds)]


@dataclass
class _Mover:
    """An object moving in a straight line from frame `t0`, with perpendicular jitter and a gait."""

    shape: str  # "ped" or "cart"
    t0: int
    x0: float
    y0: float
    vx: float
    vy: float
    scale: float
    intensity: float
    phase: float
    jitter_freq: float

    def prims(self, t: int) -> list[tuple[list[_Prim], float]]:
        """Primitives at frame `t`, grouped as (union of shapes, grey level), drawn in order."""
        k, s = t - self.t0, self.scale
        wobble = 0.5 * s * math.sin(self.phase + self.jitter_freq * k)
        cx, cy = self.x0 + self.vx * k, self.y0 + self.vy * k
        if abs(self.vx) >= abs(self.vy):
            cy += wobble
        else:
            cx += wobble
        if self.shape == "cart":
            wheels = [("ellipse", cx + dx * s, cy + 5.5 * s, 1.8 * s, 1.8 * s) for dx in (-7.0, 7.0)]
            return [(wheels, 35.0), ([("rect", cx, cy, 11.0 * s, 5.5 * s)], self.intensity)]
        speed = math.hypot(self.vx, self.vy) / s
        swing = 1.3 * s * math.sin(self.phase + 0.45 * speed * k)
        legs = [("ellipse", cx + d, cy + 6.5 * s, 0.9 * s, 3.0 * s) for d in (swing, -swing)]
        body = [("ellipse", cx, cy, 2.5 * s, 6.0 * s), ("ellipse", cx, cy - 7.5 * s, 2.0 * s, 2.0 * s)]
        return [(body + legs, self.intensity)]

    def gone(self, t: int, width: int) -> bool:
        """True once the object has walked out of the frame for good."""
        x, margin = self.x0 + self.vx * (t - self.t0), _PED_HALF_WIDTH * self.scale + 1.0
        return (self.vx > 0 and x - margin > width) or (self.vx < 0 and x + margin < 0)


def _coverage(prims: list[_Prim], height: int, width: int) -> tuple[int, int, np.ndarray] | None:
    """Anti-aliased coverage (0..1) of the union of `prims`: (top, left, crop), or None if off-frame."""
    x0 = max(0, min(math.floor(cx - rx) for _, cx, _, rx, _ in prims))
    x1 = min(width, max(math.ceil(cx + rx) + 1 for _, cx, _, rx, _ in prims))
    y0 = max(0, min(math.floor(cy - ry) for _, _, cy, _, ry in prims))
    y1 = min(height, max(math.ceil(cy + ry) + 1 for _, _, cy, _, ry in prims))
    if x1 <= x0 or y1 <= y0:
        return None
    sub = (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - 0.5
    xs = (np.arange(x0, x1)[:, None] + sub).ravel()[None, :]
    ys = (np.arange(y0, y1)[:, None] + sub).ravel()[:, None]
    inside = np.zeros((ys.size, xs.size), dtype=bool)
    for shape, cx, cy, rx, ry in prims:
        if shape == "rect":
            inside |= (np.abs(xs - cx) <= rx) & (np.abs(ys - cy) <= ry)
        else:
            inside |= ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
    alpha = inside.reshape(y1 - y0, _SUPERSAMPLE, x1 - x0, _SUPERSAMPLE).mean(axis=(1, 3))
    return (y0, x0, alpha) if alpha.any() else None


def _draw(frame: np.ndarray, mover: _Mover, t: int) -> bool:
    """Blend `mover` at frame `t` into `frame` (float, in place); True when any pixel was covered."""
    covered = False
    for prims, level in mover.prims(t):
        cov = _coverage(prims, *frame.shape)
        if cov is not None:
            y0, x0, alpha = cov
            region = frame[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
            region += alpha * (level - region)
            covered = True
    return covered


def _visible(mover: _Mover, t: int, height: int, width: int) -> bool:
    return any(_coverage(prims, height, width) is not None for prims, _ in mover.prims(t))


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Static low-frequency texture in ~90-150 with a walkway band ~20 grey levels lighter."""
    import cv2

    texture = np.zeros((height, width), np.float64)
    for cell, weight in ((16, 1.0), (6, 0.35)):
        grid = rng.standard_normal((height // cell + 2, width // cell + 2))
        texture += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = (texture - texture.min()) / max(np.ptp(texture), 1e-9)
    rows = np.arange(height, dtype=np.float64)[:, None]
    top, bottom = _WALKWAY[0] * height, _WALKWAY[1] * height
    band = 1.0 / (1.0 + np.exp(-(rows - top))) - 1.0 / (1.0 + np.exp(-(rows - bottom)))
    return 90.0 + 60.0 * texture + 20.0 * band


def _pedestrian(rng: np.random.Generator, t0: int, height: int, width: int, x: float | None) -> _Mover:
    """A walker on the walkway; `x` None places it just outside the edge it enters from."""
    s = height / 96.0
    direction = 1.0 if rng.random() < 0.5 else -1.0
    if x is None:
        # Enter within a few frames of the one that left, so the count stays nearly constant.
        offset = (_PED_HALF_WIDTH + rng.uniform(0.0, 4.0)) * s + 1.0
        x = -offset if direction > 0 else width + offset
    lane = rng.uniform(_WALKWAY[0] * height + 10.5 * s, _WALKWAY[1] * height - 10.5 * s)
    return _Mover("ped", t0, x, lane, direction * s * rng.uniform(1.0, 1.5), 0.0, s,
                  rng.uniform(25.0, 60.0), rng.uniform(0, 2 * math.pi), rng.uniform(0.2, 0.5))


def _anomaly(kind: str, rng: np.random.Generator, frames: int, height: int, width: int) -> _Mover:
    """The anomalous object of `kind`, timed to be in view only inside the allowed window."""
    s = height / 96.0
    base = _pedestrian(rng, 0, height, width, x=0.0)
    walk = abs(base.vx)
    if kind == "motion_across":
        nominal, extent, distance = _ACROSS * walk, 12.0 * s, height + 24.0 * s
    else:
        half = (11.0 if kind == "appearance" else _PED_HALF_WIDTH) * s
        nominal = (_FAST if kind == "motion_fast" else 1.0) * walk
        extent, distance = half + 1, width + 2 * half
    lo, hi = math.ceil(_HEAD * frames), frames - math.ceil(_TAIL * frames) - 1
    window = hi - lo + 1
    speed = max(min(nominal, distance / _MIN_VISIBLE), distance / max(window - 2, 1))
    across_x = rng.uniform(0.3, 0.7) * width
    while True:
        if kind == "motion_across":
            mover = _Mover("ped", 0, across_x, -extent, 0.0, speed, s, base.intensity, base.phase,
                           base.jitter_freq)
        else:
            mover = _Mover("ped" if kind == "motion_fast" else "cart", 0,
                           -extent if base.vx > 0 else width + extent, base.y0, math.copysign(speed, base.vx),
                           0.0, s, 230.0 if kind == "appearance" else base.intensity, base.phase,
                           base.jitter_freq)
        # Exact in-view steps from the render mask (gait and size included), then fit them in the window.
        steps = [k for k in range(int(distance / speed) + 4) if _visible(mover, k, height, width)]
        first, last = steps[0], steps[-1]
        if last - first + 1 <= window:
            break
        speed *= 1.05
    mover.t0 = int(rng.integers(lo - first, hi - last + 1))
    return mover


def _render_video(rng: np.random.Generator, params: SynthParams, background: np.ndarray,
                  kind: str | None) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (uint8 H x W) and per-frame 0/1 labels of one video."""
    height, width = params.height, params.width
    count = 3  # a steady crowd: the anomaly, not the head count, should move the score
    walkers = [_pedestrian(rng, 0, height, width, x=float(rng.uniform(0, width))) for _ in range(count)]
    odd = None if kind is None else _anomaly(kind, rng, params.frames, height, width)
    frames, labels = [], np.zeros(params.frames, np.uint8)
    for t in range(params.frames):
        walkers = [w if not w.gone(t, width) else _pedestrian(rng, t, height, width, None) for w in walkers]
        frame = background.copy()
        for walker in walkers:
            _draw(frame, walker, t)
        if odd is not None:
            labels[t] = _draw(frame, odd, t)  # drawn last: never occluded
        frame += rng.normal(0.0, _NOISE_SIGMA, frame.shape)
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return frames, labels


def _write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    import cv2

    height, width = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), float(fps), (width, height), True)
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter could not open {path} for MJPG/AVI; check the OpenCV build")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()


def _intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of 1 in `labels` as 0-based inclusive (start, end)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], labels.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def generate(params: SynthParams, out_dir: Path) -> dict[str, list[tuple[int, int]]]:
    """Write the synthetic dataset into `out_dir` (expected empty) in the `videos` layout.

    Args:
        params: Seed, video counts, frames per video, frame size and frame rate.
        out_dir: Dataset folder; created if missing.

    Returns:
        Abnormal intervals (0-based inclusive frame indices) per test video stem, e.g. {"01": [(17, 40)]}.
    """
    out_dir = Path(out_dir)
    seed = params.seed % (1 << 64)  # SeedSequence takes non-negative entropy only
    # Equal-length entropy keys: one stream for the background, one per (split, video), so a video does
    # not change when the number of other videos does.
    background = _background(np.random.default_rng([seed, 0, 0]), params.height, params.width)
    intervals: dict[str, list[tuple[int, int]]] = {}
    for split, count, code in (("train", params.train_videos, 1), ("test", params.test_videos, 2)):
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            kind = anomaly_kind(index, tuple(params.anomalies)) if split == "test" else None
            rng = np.random.default_rng([seed, code, index])
            frames, labels = _render_video(rng, params, background, kind)
            name = f"{index + 1:02d}"
            _write_video(out_dir / split / f"{name}.avi", frames, params.fps)
            if split == "test":
                intervals[name] = _intervals(labels)
            log.debug("wrote %s/%s.avi (%s)", split, name, kind or "normal")
    buffer = io.StringIO()
    rows = csv.writer(buffer, lineterminator="\n")
    rows.writerow(["video", "start", "end"])
    rows.writerows([name, start, end] for name, spans in intervals.items() for start, end in spans)
    atomic_write_text(out_dir / "labels.csv", buffer.getvalue())
    return intervals
