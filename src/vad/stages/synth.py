"""Stage `synth`: write the embedded synthetic dataset (`videos` layout) for the demo pipeline."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from vad.atomic import atomic_dir
from vad.config import SynthParams
from vad.data.synth import generate
from vad.stages import StageResult

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(params: SynthParams, out_dir: Path) -> StageResult:
    """Generate the synthetic dataset into `out_dir`.

    The dataset is built in a temporary folder and swapped in at the end: a failure leaves `out_dir` as it
    was.

    Returns:
        The dataset folder as output "dataset", and counts of videos, test frames and abnormal test frames.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        intervals = generate(params, tmp)
    abnormal = sum(end - start + 1 for spans in intervals.values() for start, end in spans)
    test_frames = params.test_videos * params.frames
    log.info("synth: %d train + %d test videos of %d frames (%dx%d), %d/%d test frames abnormal, "
             "in %.1f s -> %s", params.train_videos, params.test_videos, params.frames, params.height,
             params.width, abnormal, test_frames, time.perf_counter() - started, out_dir)
    return StageResult(
        outputs={"dataset": out_dir},
        metrics={"train_videos": params.train_videos, "test_videos": params.test_videos,
                 "abnormal_frames": abnormal, "test_frames": test_frames},
    )
