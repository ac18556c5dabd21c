"""The compiled pipeline's DAG, resources, retries, caching, Kubernetes settings and registration condition."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GPU = {"pretrain", "init-clusters", "train", "calibrate", "score"}
CHAIN = ["extract", "validate", "pretrain", "init-clusters", "train", "score", "evaluate", "condition-1"]


@pytest.fixture(scope="module")
def compiled() -> tuple[dict, dict]:
    spec, platform = yaml.safe_load_all((REPO / "pipelines" / "vad_pipeline.yaml").read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def tasks(compiled) -> dict[str, dict]:
    """Every task by name, the register task inside the condition included."""
    spec, _ = compiled
    return spec["root"]["dag"]["tasks"] | spec["components"]["comp-condition-1"]["dag"]["tasks"]


@pytest.fixture(scope="module")
def containers(compiled, tasks) -> dict[str, dict]:
    spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    return {name: executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]["container"]
            for name, task in tasks.items() if name != "condition-1"}


def test_dag_runs_the_stages_in_order_and_registers_inside_the_condition(compiled, tasks):
    spec, _ = compiled
    assert set(spec["root"]["dag"]["tasks"]) == {*CHAIN, "champion", "calibrate"}
    assert "train" in tasks["calibrate"]["dependentTasks"]  # the threshold of the model just trained
    # the calibration goes into the condition, and from it to register: packaged with the registered model
    channel = tasks["register"]["inputs"]["artifacts"]["calibration"]["componentInputArtifact"]
    assert tasks["condition-1"]["inputs"]["artifacts"][channel]["taskOutputArtifact"] == {
        "outputArtifactKey": "calibration", "producerTask": "calibrate"}
    for before, after in zip(CHAIN, CHAIN[1:], strict=False):
        assert before in tasks[after].get("dependentTasks", []), f"{after} does not wait for {before}"
    assert "evaluate" in tasks["champion"]["dependentTasks"]  # the champion is read after evaluation, not hours before
    assert set(spec["components"]["comp-condition-1"]["dag"]["tasks"]) == {"register"}


def test_registration_runs_only_when_the_new_auc_beats_the_champion(tasks):
    condition = tasks["condition-1"]
    assert condition["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-auc_micro'] > "
        "inputs.parameter_values['pipelinechannel--champion-Output']")
    parameters = condition["inputs"]["parameters"]
    assert parameters["pipelinechannel--evaluate-auc_micro"]["taskOutputParameter"] == {
        "outputParameterKey": "auc_micro", "producerTask": "evaluate"}
    assert parameters["pipelinechannel--champion-Output"]["taskOutputParameter"] == {
        "outputParameterKey": "Output", "producerTask": "champion"}


def test_exactly_the_gpu_stages_request_nvidia_gpus_one_each_but_train(containers):
    accelerated = {name for name, container in containers.items() if "accelerator" in container["resources"]}
    assert accelerated == GPU
    for name in GPU - {"train"}:
        accelerator = containers[name]["resources"]["accelerator"]
        assert accelerator["resourceType"] == "nvidia.com/gpu" and accelerator["resourceCount"] == "1"


def test_train_requests_train_gpus_gpus_and_runs_on_as_many_processes(containers, tasks):
    accelerator = containers["train"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu"
    # resolved by the backend when the run starts, from the task input below
    assert accelerator["resourceCount"] == "{{$.inputs.parameters['pipelinechannel--train_gpus']}}"
    assert "count" not in accelerator  # no constant left behind that a backend could prefer
    parameters = tasks["train"]["inputs"]["parameters"]
    assert parameters["pipelinechannel--train_gpus"] == {"componentInputParameter": "train_gpus"}
    assert parameters["gpus"] == {"componentInputParameter": "train_gpus"}  # the component's process count
    for name in GPU - {"train"}:
        assert not any("train_gpus" in key for key in tasks[name]["inputs"]["parameters"]), name


def test_every_task_requests_and_limits_cpu_and_memory(containers):
    for name, container in containers.items():
        resources = container["resources"]
        for key in ("resourceCpuRequest", "resourceCpuLimit", "resourceMemoryRequest", "resourceMemoryLimit"):
            assert key in resources, f"{name} has no {key}"
        assert resources["cpuLimit"] >= resources["cpuRequest"]
        assert resources["memoryLimit"] >= resources["memoryRequest"]


def test_every_task_retries_with_exponential_backoff(tasks):
    for name, task in tasks.items():
        if name == "condition-1":
            continue
        policy = task["retryPolicy"]
        assert policy["maxRetryCount"] >= 1 and policy["backoffFactor"] > 1, name
        assert policy["backoffDuration"] != "0s" and policy["backoffMaxDuration"], name


def test_only_extract_and_validate_are_cached(tasks):
    cached = {name for name, task in tasks.items() if task.get("cachingOptions", {}).get("enableCache")}
    assert cached == {"extract", "validate"}


def test_credentials_come_from_kubernetes_secrets(compiled):
    _, executors = compiled
    secrets = {name.removeprefix("exec-"): {entry["secretName"]: {m["envVar"] for m in entry["keyToEnv"]}
                                             for entry in settings.get("secretAsEnv", [])}
               for name, settings in executors.items()}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secrets["extract"]["vad-s3"]
    assert {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= secrets["champion"]["vad-mlflow"]
    assert set(secrets["register"]) == {"vad-mlflow", "vad-s3"}
    assert set(secrets["calibrate"]) == {"vad-s3"}  # normal_footage_uri may be an s3:// prefix
    # the training tasks log their epochs into the pipeline's MLflow run as they go
    assert set(secrets["pretrain"]) == set(secrets["train"]) == {"vad-mlflow"}
    assert {name for name, found in secrets.items() if found} == {"extract", "champion", "pretrain", "train",
                                                                   "calibrate", "register"}


def test_gpu_stages_get_a_memory_backed_dev_shm(compiled):
    _, executors = compiled
    mounts = {name.removeprefix("exec-"): settings.get("emptyDirMounts", []) for name, settings in executors.items()}
    assert {name for name, found in mounts.items() if found} == GPU
    for name in GPU:
        [mount] = mounts[name]
        assert mount["mountPath"] == "/dev/shm" and mount["medium"] == "Memory" and mount["sizeLimit"]


def test_components_install_nothing_at_run_time(containers):
    for name, container in containers.items():
        assert "pip install" not in " ".join(container["command"] + container.get("args", [])), name


def test_pipeline_parameters(compiled):
    spec, _ = compiled
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {"dataset_uri", "dataset_format", "preset", "model_name", "mlflow_tracking_uri",
                               "train_gpus", "normal_footage_uri"}
    assert {name for name, p in parameters.items() if not p.get("isOptional")} == {"dataset_uri", "mlflow_tracking_uri"}
    assert parameters["preset"]["defaultValue"] == "ped2" and parameters["dataset_format"]["defaultValue"] == "auto"
    assert parameters["train_gpus"] == {"defaultValue": 1.0, "isOptional": True, "parameterType": "NUMBER_INTEGER"}
    assert parameters["normal_footage_uri"] == {"defaultValue": "", "isOptional": True, "parameterType": "STRING"}


def test_calibrate_gets_the_normal_footage_parameter(tasks):
    inputs = tasks["calibrate"]["inputs"]["parameters"]
    assert inputs["normal_footage_uri"] == {"componentInputParameter": "normal_footage_uri"}
