"""Kubeflow components: one thin `@dsl.component` per stage, each calling the same `vad.stages` function as the CLI.

Every component runs in the image of `components/_image.py` and imports `vad` inside its body (a lightweight
component ships its body alone). Artifacts: `Dataset` for the frame store and scores.csv, `Model` for checkpoint
folders, `Metrics` for scalars, `ClassificationMetrics` for the ROC curve and `HTML` for the evaluation report.
Params travel as the validated params document (a dict) that `extract` resolves from the pipeline parameters.
"""

from components.calibrate.component import calibrate
from components.champion.component import champion
from components.evaluate.component import evaluate
from components.extract.component import extract
from components.init_clusters.component import init_clusters
from components.pretrain.component import pretrain
from components.register.component import register
from components.score.component import score
from components.train.component import train
from components.validate.component import validate

__all__ = ["extract", "validate", "pretrain", "init_clusters", "train", "calibrate", "score", "evaluate", "champion",
           "register"]
