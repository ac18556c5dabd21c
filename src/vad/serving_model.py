"""MLflow models-from-code entry: logged as the model's code, so no pickled Python object is stored."""

from mlflow.models import set_model

from vad.serving import ClipScorer

set_model(ClipScorer())
