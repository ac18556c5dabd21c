"""Component `evaluate`: frame-level AUCs, the ROC curve and an HTML report with the per-video score plots."""

from typing import NamedTuple

from components._image import VAD_CPU_IMAGE
from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Output


@dsl.component(base_image=VAD_CPU_IMAGE, install_kfp_package=False, packages_to_install=[])
def evaluate(frames: Input[Dataset], scores: Input[Dataset], metrics: Output[Metrics], plots: Output[Artifact],
             roc: Output[ClassificationMetrics], report: Output[HTML], params: dict = None,
             calibration: Input[Artifact] = None) -> NamedTuple("Outputs", [("auc_micro", float)]):
    """Run vad.stages.evaluate; `metrics` holds its JSON file, `plots` its plots folder (roc.csv, PNGs).

    With `calibration` (of the calibrate task) the alarms at its threshold are measured too, with the
    `detect` section of `params`.

    Returns the micro AUC as an output parameter, which the pipeline compares with the champion's. Test videos
    without labels (a camera's footage) give no AUC: the output is then 0.0, which beats only the -1.0 of "no
    champion" (`champion`), so an unlabelled model is registered exactly where no champion exists.
    """
    import base64
    import csv
    import html
    import math
    from pathlib import Path

    from vad.errors import DataLayoutError
    from vad.stages.evaluate import run

    if not (Path(frames.path) / "manifest.json").is_file():
        raise DataLayoutError(f"input frames {frames.path} is not a frame store (no manifest.json); "
                              "connect the frames Dataset of the extract task")
    if not Path(scores.path).is_file():
        raise DataLayoutError(f"input scores {scores.path} is not a scores.csv file; "
                              "connect the scores Dataset of the score task")
    from vad.calibration import Calibration
    from vad.config import parse_params

    detect = parse_params(params).detect if params else None
    result = run(Path(frames.path), Path(scores.path), Path(metrics.path), Path(plots.path), detect=detect,
                 calibration=Calibration.load(Path(calibration.path)) if calibration is not None else None)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    if "auc_micro" not in result.metrics:
        Path(report.path).write_text("<!doctype html><html><head><meta charset='utf-8'><title>vad evaluation</title>"
                                     "</head><body><h1>No test labels</h1><p>The test videos carry no labels: no "
                                     "AUC. The model is registered without one where no champion exists.</p>"
                                     "</body></html>\n")
        return (0.0,)
    with open(Path(plots.path) / "roc.csv", newline="") as handle:  # sklearn's infinite threshold is never logged
        points = [row for row in csv.DictReader(handle) if math.isfinite(float(row["threshold"]))]
    roc.log_roc_curve(*([float(p[key]) for p in points] for key in ("fpr", "tpr", "threshold")))
    pictures = [Path(plots.path) / "roc.png", *sorted((Path(plots.path) / "scores").glob("*.png"))]
    figures = "".join(f"<h3>{html.escape(p.stem)}</h3><img alt='{html.escape(p.stem)}' "
                      f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>" for p in pictures)
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>" for k, v in result.metrics.items())
    Path(report.path).write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>vad evaluation</title>"
                                 f"</head><body><h1>Frame-level evaluation</h1><table>{table}</table>{figures}"
                                 "</body></html>\n")
    return (float(result.metrics["auc_micro"]),)
