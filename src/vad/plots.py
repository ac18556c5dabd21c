"""PNG plots for the evaluation report: anomaly score over time per video, and the ROC curve.

matplotlib is imported inside each function (so `import vad.plots` stays cheap) and drives a bare
`Figure` with the Agg canvas: no pyplot state, no display, safe in containers and threads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["abnormal_intervals", "plot_video_scores", "plot_roc", "loss_figure"]

log = logging.getLogger(__name__)


def abnormal_intervals(labels: np.ndarray) -> list[tuple[int, int]]:
    """0-based inclusive [start, end] runs of 1s in a per-frame 0/1 label array."""
    padded = np.concatenate([[0], (np.asarray(labels) > 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(start), int(end) - 1) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_video_scores(video_id: str, frames: np.ndarray, anomaly: np.ndarray, labels: np.ndarray | None,
                      path: str | Path) -> None:
    """Write a PNG of one video's anomaly score over time, abnormal ground truth shaded.

    Args:
        video_id: Shown in the title.
        frames: (n,) 0-based frame indices.
        anomaly: (n,) anomaly score in [0, 1]; NaN where a frame is not scored (drawn as a gap).
        labels: (n,) 0/1 ground truth, or None to shade nothing.
        path: The PNG to write.
    """
    figure = _figure(8.0, 2.5)
    axes = figure.add_subplot()
    for start, end in abnormal_intervals(labels) if labels is not None else []:
        axes.axvspan(frames[start] - 0.5, frames[end] + 0.5, color="tab:red", alpha=0.2, linewidth=0)
    axes.plot(frames, anomaly, color="tab:blue", linewidth=1.0)
    axes.set_xlim(-0.5, max(float(frames[-1]) if len(frames) else 0.0, 1.0) + 0.5)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("frame")
    axes.set_ylabel("anomaly score")
    axes.set_title(f"video {video_id} (shaded: abnormal ground truth)")
    figure.tight_layout()
    figure.savefig(Path(path), format="png")


def plot_roc(fpr: np.ndarray, tpr: np.ndarray, auc: float, path: str | Path) -> None:
    """Write a PNG of the ROC curve, with its AUC in the legend."""
    figure = _figure(4.0, 4.0)
    axes = figure.add_subplot()
    axes.plot(fpr, tpr, color="tab:blue", label=f"AUC = {auc:.4f}")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.005)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("frame-level ROC (micro)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(Path(path), format="png")


def loss_figure(histories: dict[str, list[dict[str, float]]]):
    """A figure of each stage's losses per epoch (one panel per stage, log scale): for MLflow's `log_figure`."""
    figure = _figure(5.0 * max(len(histories), 1), 3.5)
    for index, (stage, history) in enumerate(histories.items(), start=1):
        axes = figure.add_subplot(1, max(len(histories), 1), index)
        epochs = [record["epoch"] for record in history]
        for key in sorted({k for record in history for k in record if k.startswith("loss")}):
            axes.plot(epochs, [record.get(key, np.nan) for record in history], marker=".", label=key)
        axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel("mean loss per batch")
        axes.set_title(f"{stage} losses")
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
