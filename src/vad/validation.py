"""Data validation of a frame store with Great Expectations (GX Core 1.x).

`video_table` summarises each video of the store in one row (manifest entry, array geometry read through
a memory map, label statistics and pixel statistics over a strided sample of frames). `validate_store`
runs an expectation suite over that table in an ephemeral GX context and returns a `Report` whose
failures name the offending videos.

Great Expectations and pandas are imported inside the functions: importing GX takes seconds, and
`import vad.validation` must stay cheap for the CLI.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vad.data.base import Split
from vad.data.store import FrameStore, VideoEntry
from vad.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Report", "video_table", "validate_store", "SAMPLE_FRAMES", "MIN_STD", "MIN_MAX_VALUE",
           "BRIGHTNESS_RANGE"]

SAMPLE_FRAMES = 16  # frames per video, evenly strided, behind std / mean_brightness / max_value
MIN_STD = 0.5  # pixel standard deviation at or below which a video counts as constant
MIN_MAX_VALUE = 10  # brightest sampled pixel at or below which a video counts as all black
BRIGHTNESS_RANGE = (5.0, 250.0)  # accepted mean pixel value
_MAX_IDS = 10  # video ids named per failure line


@dataclass(frozen=True)
class Report:
    """Outcome of `validate_store`.

    Attributes:
        success: True when every expectation passed.
        failures: One line per failed expectation, e.g.
            "expect_column_values_to_be_between(frames >= 5): train_03, test_07".
        result: The full GX validation result, JSON-serialisable (NaN written as None).
        videos: The table the suite ran on, one JSON-serialisable dict per video.
    """

    success: bool
    failures: tuple[str, ...]
    result: dict[str, Any]
    videos: list[dict[str, Any]]

    @property
    def expectations(self) -> int:
        """Number of expectations evaluated."""
        return int(self.result["statistics"]["evaluated_expectations"])

    def to_dict(self) -> dict[str, Any]:
        """The report as one JSON-serialisable document."""
        return {"success": self.success, "failures": list(self.failures), "videos": self.videos,
                "result": self.result}


def video_table(store: FrameStore) -> pd.DataFrame:
    """One row per video of `store`: manifest fields, array geometry, label and pixel statistics.

    Columns: id, split, frames (manifest), array_frames, array_height, array_width, array_channels
    (-1 when the array is not 4-D), array_dtype, labelled, labels_length, labels_min, labels_max,
    labels_nonbinary (label values other than 0/1), abnormal_frames, normal_frames (label columns NaN
    when the video has no labels), std, mean_brightness, max_value (over `SAMPLE_FRAMES` strided frames;
    NaN for an empty video).

    Raises:
        DataError: a frame or label array is missing or unreadable.
    """
    import pandas as pd

    return pd.DataFrame([_video_row(store, video) for video in store.videos], columns=_COLUMNS)


_COLUMNS = ["id", "split", "frames", "array_frames", "array_height", "array_width", "array_channels",
            "array_dtype", "labelled", "labels_length", "labels_min", "labels_max", "labels_nonbinary",
            "abnormal_frames", "normal_frames", "std", "mean_brightness", "max_value"]


def _video_row(store: FrameStore, video: VideoEntry) -> dict[str, Any]:
    try:
        array = store.frames(video)
        labels = store.labels(video)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the arrays of video {video.id} in frame store {store.root} ({error}); "
                        "re-run `vad extract`") from None
    shape = array.shape
    row: dict[str, Any] = {
        "id": video.id, "split": video.split, "frames": int(video.frames),
        "array_frames": int(shape[0]) if array.ndim else -1,
        "array_height": int(shape[1]) if array.ndim >= 3 else -1,
        "array_width": int(shape[2]) if array.ndim >= 3 else -1,
        "array_channels": int(shape[3]) if array.ndim == 4 else -1,
        "array_dtype": str(array.dtype), "labelled": labels is not None,
    }
    nan = math.nan
    if labels is None:
        row.update(labels_length=nan, labels_min=nan, labels_max=nan, labels_nonbinary=nan,
                   abnormal_frames=nan, normal_frames=nan)
    else:
        flat = np.asarray(labels).ravel()
        row.update(labels_length=float(flat.size),
                   labels_min=float(flat.min()) if flat.size else nan,
                   labels_max=float(flat.max()) if flat.size else nan,
                   labels_nonbinary=float(np.count_nonzero((flat != 0) & (flat != 1))),
                   abnormal_frames=float(np.count_nonzero(flat)), normal_frames=float(np.count_nonzero(flat == 0)))
    if array.ndim and shape[0] and array.dtype.kind in "biuf":
        stride = max(1, math.ceil(shape[0] / SAMPLE_FRAMES))
        sample = np.asarray(array[::stride], dtype=np.float64)
        row.update(std=float(sample.std()), mean_brightness=float(sample.mean()), max_value=float(sample.max()))
    else:
        row.update(std=nan, mean_brightness=nan, max_value=nan)
    return row


def validate_store(store: FrameStore, clip_len: int) -> Report:
    """Check `store` against the frame store expectations with Great Expectations.

    Every video holds at least `clip_len` frames; its array matches the manifest (frames, image size,
    channels) and is uint8; labels are 0/1 and one per frame; training videos hold no abnormal frame;
    a labelled test set holds both classes; no video is constant, all black, too dark or too bright.

    Args:
        store: The frame store to check.
        clip_len: Frames per clip; shorter videos yield no clip.

    Returns:
        The report; its `success` is False when any expectation failed (nothing is raised for that).

    Raises:
        DataError: a frame or label array is missing or unreadable.
    """
    table = video_table(store)
    is_train = table["split"] == Split.TRAIN.value
    is_test_labelled = (table["split"] == Split.TEST.value) & table["labelled"]
    # Split-specific copies of the label counts: NaN rows are skipped by column-value expectations.
    frame = table.assign(train_abnormal_frames=table["abnormal_frames"].where(is_train),
                         test_abnormal_frames=table["abnormal_frames"].where(is_test_labelled),
                         test_normal_frames=table["normal_frames"].where(is_test_labelled))

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # read by GX when it loads
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name, logger in logging.root.manager.loggerDict.items():  # some GX modules set themselves to INFO
        if name.startswith("great_expectations") and isinstance(logger, logging.Logger):
            logger.setLevel(max(logger.level, logging.WARNING))

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (context.data_sources.add_pandas("frame_store").add_dataframe_asset("videos")
             .add_batch_definition_whole_dataframe("all_videos"))
    suite = context.suites.add(gx.ExpectationSuite(name="frame_store"))
    for expectation in _expectations(gx.expectations, store, clip_len, bool(is_test_labelled.any())):
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="frame_store", data=batch, suite=suite))
    outcome = definition.run(batch_parameters={"dataframe": frame},
                             result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"]})
    result = _without_run_identity(_plain(outcome.to_json_dict()))
    failures = tuple(_failure(item) for item in result["results"] if not item["success"])
    return Report(success=bool(result["success"]) and not failures, failures=failures, result=result,
                  videos=_plain(table.to_dict(orient="records")))


def _expectations(gxe: Any, store: FrameStore, clip_len: int, test_labelled: bool) -> list[Any]:
    height, width = store.image_size
    low, high = BRIGHTNESS_RANGE
    expectations = [
        gxe.ExpectColumnValuesToBeBetween(column="frames", min_value=clip_len),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="array_frames", column_B="frames"),
        gxe.ExpectColumnValuesToBeInSet(column="array_height", value_set=[height]),
        gxe.ExpectColumnValuesToBeInSet(column="array_width", value_set=[width]),
        gxe.ExpectColumnValuesToBeInSet(column="array_channels", value_set=[store.channels]),
        gxe.ExpectColumnValuesToBeInSet(column="array_dtype", value_set=["uint8"]),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="labels_length", column_B="frames",
                                            ignore_row_if="either_value_is_missing"),
        gxe.ExpectColumnValuesToBeInSet(column="labels_min", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeInSet(column="labels_max", value_set=[0, 1]),
        gxe.ExpectColumnValuesToBeBetween(column="labels_nonbinary", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="train_abnormal_frames", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="std", min_value=MIN_STD, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="max_value", min_value=MIN_MAX_VALUE, strict_min=True),
        gxe.ExpectColumnValuesToBeBetween(column="mean_brightness", min_value=low, max_value=high),
    ]
    if test_labelled:
        expectations += [gxe.ExpectColumnSumToBeBetween(column="test_abnormal_frames", min_value=1),
                         gxe.ExpectColumnSumToBeBetween(column="test_normal_frames", min_value=1)]
    return expectations


def _failure(item: dict[str, Any]) -> str:
    """One line for a failed expectation: its type, the rule and the videos (or value) that broke it."""
    config = item["expectation_config"]
    kind, kwargs = config["type"], config["kwargs"]
    head = f"{kind}({_rule(kind, kwargs)})"
    exception = item.get("exception_info") or {}
    if exception.get("raised_exception"):
        return f"{head}: error {exception.get('exception_message')}"
    result = item.get("result") or {}
    if "unexpected_index_list" in result:
        ids = [str(entry["id"]) if isinstance(entry, dict) else str(entry) for entry in result["unexpected_index_list"]]
        more = f" (+{len(ids) - _MAX_IDS} more)" if len(ids) > _MAX_IDS else ""
        return f"{head}: {', '.join(ids[:_MAX_IDS])}{more}"
    return f"{head}: observed {_num(result.get('observed_value'))}"


def _rule(kind: str, kwargs: dict[str, Any]) -> str:
    if "column_A" in kwargs:
        return f"{kwargs['column_A']} == {kwargs['column_B']}"
    column = f"sum({kwargs['column']})" if kind == "expect_column_sum_to_be_between" else kwargs["column"]
    if "value_set" in kwargs:
        return f"{column} in {{{', '.join(_num(value) for value in kwargs['value_set'])}}}"
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        return f"{column} == {_num(low)}" if low == high else f"{column} in [{_num(low)}, {_num(high)}]"
    if low is not None:
        return f"{column} {'>' if kwargs.get('strict_min') else '>='} {_num(low)}"
    return f"{column} {'<' if kwargs.get('strict_max') else '<='} {_num(high)}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _without_run_identity(result: dict[str, Any]) -> dict[str, Any]:
    """The GX result without what differs on every run (ids, load and run times).

    The report is a DVC output: its hash must depend on the data alone.
    """
    result = {key: value for key, value in result.items() if key != "id"}
    meta = {key: value for key, value in result.get("meta", {}).items()
            if key not in {"validation_id", "run_id", "validation_time", "checkpoint_id"}}
    if isinstance(meta.get("batch_markers"), dict):
        meta["batch_markers"] = {k: v for k, v in meta["batch_markers"].items() if k != "ge_load_time"}
    results = [{**item, "expectation_config": {k: v for k, v in item.get("expectation_config", {}).items()
                                                if k != "id"}} for item in result.get("results", [])]
    return {**result, "meta": meta, "results": results}


def _plain(value: Any) -> Any:
    """`value` with numpy scalars made Python ones and NaN made None, so json.dumps writes strict JSON."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
