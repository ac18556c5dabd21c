r"""Submit the compiled pipeline to a Kubeflow Pipelines server, optionally as a recurring (retraining) run.

    vad pipeline submit --host https://kfp.example.com --dataset s3://datasets/ped2 \
        --tracking-uri http://mlflow:5000 --preset ped2 --cron "0 0 3 * * 1"     # also every Monday at 03:00

The cron expression has six fields, seconds first (Kubeflow's format).
"""

import hashlib
import time
from pathlib import Path
from typing import Any

from pipelines.compile import PACKAGE

__all__ = ["submit", "PIPELINE_NAME"]

PIPELINE_NAME = "vad"


def submit(host: str, package: str | Path = PACKAGE, experiment: str = "vad", params: dict[str, Any] | None = None,
           recurring_cron: str | None = None, *, client: Any = None) -> dict[str, str]:
    """Upload `package` (a new version of pipeline `vad`), start one run and, with `recurring_cron`, a recurring run.

    Args:
        host: Kubeflow Pipelines API endpoint.
        package: Compiled pipeline YAML.
        experiment: Experiment to file the runs under (created if missing).
        params: Keyword arguments of `pipeline_arguments` (dataset_uri, mlflow_tracking_uri, preset, ...),
            checked before anything is uploaded.
        recurring_cron: Six-field cron expression for scheduled retraining; None for a single run.
        client: A `kfp.Client` (tests); default one for `host`.

    Returns:
        pipeline_id, version_id, run_id and, for a schedule, recurring_run_id.
    """
    from pipelines.vad_pipeline import pipeline_arguments
    from vad.errors import DataLayoutError

    package = Path(package)
    if not package.is_file():
        raise DataLayoutError(f"pipeline package {package} not found; run `vad pipeline compile` first")
    arguments = pipeline_arguments(**(params or {}))
    if client is None:
        import kfp

        client = kfp.Client(host=host)
    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:12]
    pipeline_id = client.get_pipeline_id(PIPELINE_NAME)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=PIPELINE_NAME).pipeline_id
        version_id = client.list_pipeline_versions(pipeline_id).pipeline_versions[0].pipeline_version_id
    else:
        version_name = f"{PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{digest}"
        version_id = client.upload_pipeline_version(str(package), version_name,
                                                    pipeline_id=pipeline_id).pipeline_version_id
    experiment_id = client.create_experiment(experiment).experiment_id
    job = f"{PIPELINE_NAME}-{digest}"
    run = client.run_pipeline(experiment_id, job, params=arguments, pipeline_id=pipeline_id, version_id=version_id)
    result = {"pipeline_id": pipeline_id, "version_id": version_id, "run_id": run.run_id}
    if recurring_cron:
        recurring = client.create_recurring_run(experiment_id, f"{job}-retrain", cron_expression=recurring_cron,
                                                params=arguments, pipeline_id=pipeline_id, version_id=version_id,
                                                max_concurrency=1, no_catchup=True)
        result["recurring_run_id"] = recurring.recurring_run_id
    return result
