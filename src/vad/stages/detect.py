"""Stage `detect`: alarms on footage, with the calibrated threshold (vad.calibration, vad.events).

    <out_dir>/
        scores.csv     the scores.csv columns, plus `anomaly_score` (the calibration's alarm score, high =
                       abnormal, no per-video rescaling) and `is_anomaly` (above the threshold)
        events.jsonl   one event per line: start_frame, end_frame, times (s), peak frame, time and score

Scoring is causal: the score of frame t comes from the clip that ends at t (frames t-T+1..t), never from a
later frame, and the threshold is fixed before the footage is seen. Files are scored in batches; each
event is also passed to `on_event` (the CLI prints it as a JSON line) as soon as it closes.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vad.calibration import CALIBRATION, Calibration, alarm_score
from vad.config import Params
from vad.data.decode import iter_frames, prefetch
from vad.data.live import Retry, SourceLost, is_live, live_frames, live_name, source_fps
from vad.data.videos import footage
from vad.errors import DataError
from vad.events import Event, EventDetector
from vad.metrics import anomaly_from_regularity
from vad.overlay import OverlayWriter
from vad.scores_csv import DETECT_COLUMNS, format_value
from vad.scoring import RAW_SCORES, stream_scores
from vad.stages import StageResult
from vad.stages.score import load_model

__all__ = ["run"]

log = logging.getLogger(__name__)


def _fps(path: Path, default: float) -> float:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return source_fps(capture, default) if capture.isOpened() else default
    finally:
        capture.release()


class _Stop:
    """SIGINT and SIGTERM, while detection runs, ask it to stop after the current frame (main thread only).

    A second signal stops at once, like Ctrl-C elsewhere: the partial outputs are removed, the previous kept.
    """

    def __init__(self) -> None:
        self.number = 0  # the signal that asked to stop, 0 while none did

    def __call__(self) -> bool:
        return self.number != 0

    @property
    def signal(self) -> str:
        return signal.Signals(self.number).name if self.number else ""

    def __enter__(self) -> _Stop:
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: object) -> None:
        if self.number:  # asked twice (a stream read may block up to detect.stream_timeout_s): stop now
            raise KeyboardInterrupt
        self.number = number

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class _Outputs:
    """scores.csv and events.jsonl, written as `.partial` files line by line and renamed once complete."""

    def __init__(self, out_dir: Path) -> None:
        self.created = not out_dir.exists()
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.final = {name: out_dir / name for name in ("scores.csv", "events.jsonl")}
        self.partial = {name: path.with_name(path.name + ".partial") for name, path in self.final.items()}
        self.scores = self.partial["scores.csv"].open("w", newline="")
        self.events = self.partial["events.jsonl"].open("w")
        self.rows = csv.writer(self.scores, lineterminator="\n")
        self.rows.writerow(DETECT_COLUMNS)

    def write_rows(self, rows: list[tuple]) -> None:
        self.rows.writerows(rows)
        self.scores.flush()

    def write_event(self, event: Event) -> None:
        self.events.write(event.to_json() + "\n")
        self.events.flush()

    def finish(self, keep: bool) -> None:
        """Close; rename the files into place (`keep`) or remove them (the previous outputs stay)."""
        for handle in (self.scores, self.events):
            handle.close()
        for name, path in self.partial.items():
            if keep:
                os.replace(path, self.final[name])
            else:
                path.unlink(missing_ok=True)
        if not keep and self.created and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()


def run(params: Params, sources: list[str], model_dir: Path, out_dir: Path, *, threshold: float | None = None,
        calibration_path: Path | None = None, on_event: Callable[[Event], None] | None = None,
        progress: bool = False, overlay: Path | None = None) -> StageResult:
    """Score each source (video files, folders of them, camera indices, stream URLs), raise events, write `out_dir`.

    The threshold is `threshold` if given, else the model's calibration (`calibration_path`, by default
    `model_dir/calibration.json`) for `detect.false_alarms_per_hour` at each source's frame rate. Files are
    scored in batches of `score.batch_size` clips; live sources frame by frame, as each frame arrives, and
    reopened when they drop (`vad.data.live`). SIGINT or SIGTERM stops detection after the current frame:
    open events are closed, and the outputs are complete up to that frame (`metrics["stopped_by_signal"]` is the
    signal's number, else 0). `overlay`: an mp4 of each frame with its anomaly heatmap, score timeline and
    alarm mark (`vad.overlay`); with several sources, one per source, named `<stem>_<source>.mp4`.

    Raises:
        DataError: missing footage, a video shorter than a clip; DataLayoutError: no calibration.
        CorruptMediaError: a video cannot be decoded. SourceLost: a live source gone for good (the outputs
        up to then are written first). On any other error the previous outputs stay as they were.
    """
    items = [(source, True) if is_live(source) else (path, False) for source in sources
             for path in ([source] if is_live(source) else footage([source]))]
    names = [live_name(str(item)) if live else Path(item).stem for item, live in items]
    if len(set(names)) != len(names):
        raise DataError("two sources share a name; scores.csv and events.jsonl key rows by it (a video's file name, "
                        "a stream's URL), so rename them or detect in separate runs")
    calibration = None if threshold is not None else Calibration.load(calibration_path or model_dir / CALIBRATION)
    # the threshold was chosen on scores with the calibration's cluster map: score with the same one (a file
    # from before score.cluster_distance was calibrated on the model's own map)
    trained, runtime = load_model(params, model_dir, (calibration.cluster_distance or "model") if calibration else None)
    trained.require_map(calibration.map if calibration else params.detect.map, model_dir)
    detect = params.detect
    retry = Retry(detect.reconnect_attempts, detect.reconnect_max_delay_s, detect.stream_timeout_s)
    totals = {"frames": 0, "events": 0, "alarms": 0}
    outputs = _Outputs(out_dir)
    keep = False
    with _Stop() as stop:
        try:
            for (item, live), name in zip(items, names, strict=True):
                if stop():
                    break
                _detect_one(params, trained, runtime, item, name, live, threshold, calibration, retry, stop,
                            outputs, on_event, totals, progress, _overlay_path(overlay, name, len(items)))
            keep = True
        except SourceLost:
            # what a source gave until it was lost is complete: keep it, then say it ended
            keep = totals["frames"] > 0
            raise
        finally:
            outputs.finish(keep)
    if stop():
        log.warning("stopped by %s after %d frame(s); %s holds every frame and event up to then", stop.signal,
                    totals["frames"], out_dir)
    return StageResult(outputs={"scores": outputs.final["scores.csv"], "events": outputs.final["events.jsonl"]},
                       metrics={"frames": float(totals["frames"]), "events": float(totals["events"]),
                                "frames_above_threshold": float(totals["alarms"]),
                                "stopped_by_signal": float(stop.number)})


def _detect_one(params: Params, trained, runtime, item, name: str, live: bool, threshold: float | None,
                calibration: Calibration | None, retry: Retry, stop: _Stop, outputs: _Outputs,
                on_event: Callable[[Event], None] | None, totals: dict[str, int], progress: bool,
                overlay: Path | None) -> None:
    """Detect on one source: scores rows and events into `outputs`, counts into `totals`."""
    geometry, clip_len, detect = trained.data_params, trained.data_params.clip_len, params.detect
    state = {"fps": detect.fps, "frames": 0}
    if live:
        def opened(capture) -> None:
            state["fps"] = source_fps(capture, detect.fps)

        frames = live_frames(str(item), geometry.image_size, geometry.channels, retry=retry, stop=stop,
                             on_open=opened)
    else:
        state["fps"] = _fps(item, detect.fps)
        # footage of another size or colour mode is resized and converted to what the model saw
        frames = prefetch(iter_frames(item, geometry.image_size, geometry.channels), 2 * params.score.batch_size)
    recent: dict[int, np.ndarray] = {}  # frames waiting for their row, for the overlay

    def counted() -> Iterator[np.ndarray | None]:
        bar = None
        if progress and not live:
            from tqdm import tqdm

            bar = tqdm(desc=f"detect {name}", unit="frame", leave=False)
        for frame in frames:
            if frame is not None:
                if overlay is not None:
                    recent[state["frames"]] = frame
                state["frames"] += 1
                if bar is not None:
                    bar.update()
            yield frame
            if stop():
                break
        if bar is not None:
            bar.close()

    run = _SourceRun(name, threshold, calibration, detect, outputs, on_event, totals, live)
    writer = None
    try:
        for number, values in stream_scores(trained.model, counted(), clip_len, 1 if live else params.score.batch_size,
                                            trained.model_params.kmeans, runtime.device, runtime.amp_dtype,
                                            maps=overlay is not None):
            run.start(state["fps"])
            if overlay is not None and writer is None:
                writer = OverlayWriter(overlay, state["fps"], run.limit, geometry.image_size)
            for unscored in range(run.rows_done, number):
                alarm = run.record(unscored, None)
                if writer is not None:
                    writer.write(recent.pop(unscored), math.nan, None, alarm)
            alarm = run.record(number, values)
            if writer is not None:
                writer.write(recent.pop(number), run.score(values), values[run.map_key], alarm)
    finally:
        totals["frames"] += state["frames"]
        if run.detector is not None:
            for unscored in range(run.rows_done, state["frames"]):
                alarm = run.record(unscored, None)
                if writer is not None:
                    writer.write(recent.pop(unscored), math.nan, None, alarm)
            run.close()
        if writer is not None:
            writer.close(keep=sys.exc_info()[0] is None or isinstance(sys.exc_info()[1], SourceLost))
    if not live and state["frames"] < clip_len and not stop():
        raise DataError(f"video {item} has {state['frames']} frames, fewer than the clip length {clip_len}")
    log.info("%s: %d frames at %.3g frames/s, threshold %s: %d event(s)", name, state["frames"], state["fps"],
             "-" if run.limit is None else f"{run.limit:.6g}", run.events)


class _SourceRun:
    """The rows and events of one source: a row per frame, the detector fed in frame order."""

    def __init__(self, name: str, threshold: float | None, calibration: Calibration | None, detect,
                 outputs: _Outputs, on_event: Callable[[Event], None] | None, totals: dict[str, int],
                 live: bool) -> None:
        self.name, self.threshold, self.calibration, self.detect = name, threshold, calibration, detect
        self.outputs, self.on_event, self.totals, self.live = outputs, on_event, totals, live
        self.detector: EventDetector | None = None
        self.limit: float | None = None
        self.rows: list[tuple] = []
        self.fused: list[float] = []
        self.rows_done = self.events = 0
        # the alarm score the threshold holds for: the calibration's, or the params' with a given threshold
        self.map, self.pooling = (calibration.map, calibration.pooling) if calibration else (detect.map, detect.pooling)
        self.map_key = "map" if self.map == "fused" else "error_map"  # the heatmap the overlay draws

    def score(self, values: dict) -> float:
        """The alarm score of one frame's raw scores."""
        return float(alarm_score(values, self.map, self.pooling))

    def start(self, fps: float) -> None:
        """The threshold and the detector, once the frame rate is known (a live source's, when it opens)."""
        if self.detector is None:
            self.limit = self.threshold if self.threshold is not None else self.calibration.threshold_for(
                self.detect.false_alarms_per_hour, fps)
            self.detector = EventDetector(self.limit, min_frames=self.detect.min_event_frames,
                                          merge_gap=self.detect.merge_gap_frames, fps=fps, source=self.name)

    def record(self, number: int, values: dict | None) -> bool:
        """Frame `number`'s row (unscored when `values` is None); returns whether it is above the threshold."""
        if values is None:
            row, score, alarm = (self.name, number, 0, "", *("" for _ in RAW_SCORES), "", 0), math.nan, False
            self.fused.append(math.nan)
        else:
            score = self.score(values)
            alarm = score > self.limit
            # `anomaly` (per-video min-max, Eq. 14) needs the whole video: filled in at the end for files
            row = (self.name, number, 1, "", *(format_value(values[c]) for c in RAW_SCORES), format_value(score),
                   int(alarm))
            self.fused.append(values["fused"])
            self.totals["alarms"] += int(alarm)
        self.rows.append(row)
        self.rows_done = number + 1
        self._emit(self.detector.update(number, score))
        if self.live:  # a live source's rows are written as they come
            self.outputs.write_rows(self.rows)
            self.rows.clear()
        return alarm

    def close(self) -> None:
        """Close the open event and write the rows (a file's with its per-video `anomaly` column)."""
        self._emit(self.detector.close())
        if self.rows:
            fused = np.asarray(self.fused, dtype=np.float64)
            relative, scored = np.full_like(fused, math.nan), ~np.isnan(fused)
            relative[scored] = anomaly_from_regularity(fused[scored])
            self.rows = [(*row[:3], format_value(relative[row[1]]) if row[2] else "", *row[4:]) for row in self.rows]
        self.outputs.write_rows(self.rows)
        self.rows.clear()

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            self.outputs.write_event(event)
            self.totals["events"] += 1
            self.events += 1
            if self.on_event:
                self.on_event(event)


def _overlay_path(overlay: Path | None, name: str, sources: int) -> Path | None:
    if overlay is None or sources == 1:
        return overlay
    return overlay.with_name(f"{overlay.stem}_{name}{overlay.suffix or '.mp4'}")
