"""Stage `validate`: check the frame store with Great Expectations before any training time is spent.

Output:

    <report_path>    JSON: success, failures (one line each), videos (the validated table) and result
                     (the full GX validation result); written whether or not the store passes
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vad.atomic import atomic_write_text
from vad.config import DataParams
from vad.data.store import FrameStore
from vad.errors import DataError
from vad.stages import StageResult
from vad.validation import validate_store

__all__ = ["run"]

log = logging.getLogger(__name__)

_SHOWN_FAILURES = 3  # failures spelled out in the error message; the report holds them all


def run(params: DataParams, frames_dir: Path, report_path: Path) -> StageResult:
    """Validate the frame store in `frames_dir` and write the report to `report_path` (atomically).

    Args:
        params: Data params; `clip_len` is the shortest accepted video, in frames.
        frames_dir: The frame store written by `vad extract`.
        report_path: Where the JSON report goes, on success and on failure.

    Returns:
        outputs {"report": report_path}; metrics {"expectations": evaluated, "failed": 0}.

    Raises:
        DataLayoutError: `frames_dir` holds no readable frame store.
        DataError: an array is unreadable, or any expectation failed (the report is written first).
    """
    frames_dir, report_path = Path(frames_dir), Path(report_path)
    store = FrameStore.open(frames_dir)
    report = validate_store(store, params.clip_len)
    atomic_write_text(report_path, json.dumps(report.to_dict(), indent=1, allow_nan=False) + "\n")
    for failure in report.failures:
        log.error("validate: %s", failure)
    if not report.success:
        failures = report.failures or ("the validation did not succeed",)
        shown = "; ".join(failures[:_SHOWN_FAILURES])
        more = f"; and {len(failures) - _SHOWN_FAILURES} more" if len(failures) > _SHOWN_FAILURES else ""
        raise DataError(f"frame store {frames_dir} failed {len(failures)} of {report.expectations} expectations: "
                        f"{shown}{more}; see {report_path}")
    log.info("frame store %s passed %d expectations over %d videos", frames_dir, report.expectations,
             len(store.videos))
    return StageResult(outputs={"report": report_path}, metrics={"expectations": report.expectations, "failed": 0})
