"""Component `champion`: the micro AUC the new model has to beat to be registered."""

from components._image import VAD_CPU_IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input


@dsl.component(base_image=VAD_CPU_IMAGE, install_kfp_package=False, packages_to_install=[])
def champion(params: dict, frames: Input[Dataset], tracking_uri: str) -> float:
    """Micro AUC of the model version holding the champion alias in MLflow; -1.0 when there is none.

    A champion evaluated on other data (another `data_fingerprint` than `frames`) counts as none: AUCs are only
    comparable on the same data, and the register stage then registers without promoting. A champion without an
    AUC (registered from unlabelled footage) counts as 0.0: any evaluated model beats it, an unlabelled one
    (whose `evaluate` gives 0.0) does not. -1.0, below every AUC and below the 0.0 of an unlabelled model, lets
    the first model of any footage be registered.
    """
    from vad.config import parse_params
    from vad.tracking import MlflowTracker

    validated = parse_params(params)
    holder = MlflowTracker(tracking_uri).champion(validated.model_name, validated.registry.alias)
    same_data = holder is not None and holder.tags.get("data_fingerprint") == frames.metadata.get("data_fingerprint")
    return float(holder.tags.get("auc_micro", 0.0)) if same_data else -1.0
