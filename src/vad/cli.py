"""The `vad` console script: one subcommand per stage, each a thin call into `vad.stages`.

Paths go on the command line; values come from params.yaml, and the options below override a few of them
so that each stage is useful without DVC.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vad.allocator import keep_freed_memory
from vad.atomic import disk_full, is_disk_full
from vad.errors import VadError

log = logging.getLogger("vad")


def _params(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None):
    import yaml

    from vad.config import load_params, parse_params
    from vad.errors import ConfigError

    path = Path(args.params)
    if path.is_file():
        document = yaml.safe_load(path.read_text()) or {}
        base = load_params(path)  # validates the file on its own, so errors name the file's keys
        source = str(path)
        fields = type(base).model_fields
        unset = [field.alias or name for name, field in fields.items() if (field.alias or name) not in document]
        if unset:  # allowed and documented (README, --params help); DEBUG so that an error stays one line
            log.debug("%s sets no %s: their defaults apply (the paper's settings for the method)", path,
                     ", ".join(unset))
    elif args.params == "params.yaml":
        # DEBUG: running without a params file is the documented quick start, and errors stay one line
        log.debug("no params.yaml here: the defaults apply (the paper's settings); pass --params PATH to use a file")
        document, base, source = {}, parse_params({}), "defaults"
    else:
        raise ConfigError(f"params file {path} not found; pass --params PATH to an existing file")
    document = base.model_dump(mode="json", by_alias=True) | {}
    changed = False
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None:
                target = document if section == "" else document.setdefault(section, {})
                target[key] = value
                changed = True
    return parse_params(document, f"{source} + command-line options") if changed else base


def _write_metrics(path: str | None, metrics: dict[str, float]) -> None:
    """Write the stage's metrics file for DVC, without throughput (`*_per_s`, logged instead).

    DVC hashes this file, and its hash must be the same on every machine that runs the same data, code and params.
    """
    if path:
        from vad.atomic import atomic_write_text

        kept = {k: round(v, 6) for k, v in sorted(metrics.items()) if not k.endswith("_per_s")}
        for key in sorted(set(metrics) - set(kept)):
            log.info("%s: %.1f", key, metrics[key])
        atomic_write_text(Path(path), json.dumps(kept, indent=1) + "\n")
    from vad.launch import RESULT_FILE_ENV

    if full := os.environ.get(RESULT_FILE_ENV):  # every metric, for `vad.launch` (a torchrun launch)
        from vad.atomic import atomic_write_text

        atomic_write_text(Path(full), json.dumps(metrics) + "\n")


def _progress() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _pipeline_run(args: argparse.Namespace, params, stage: str) -> Iterator[Any]:
    """The pipeline's MLflow run when `--run-file` is given (see `vad.pipeline_run`), else None.

    Under torchrun only rank 0 tracks. A stage that raises or is stopped marks the run FAILED.
    """
    path = getattr(args, "run_file", None)
    if not path or not getattr(args, "frames", None) or os.environ.get("RANK", "0") != "0":
        yield None
        return
    from vad.pipeline_run import PipelineRun, read_run_file

    previous, digest = read_run_file(Path(path))
    run = PipelineRun.open(params, stage=stage, frames_dir=Path(args.frames), previous=previous,
                           previous_params=digest)
    run.write(Path(path))
    with run.stage(stage):
        yield run


def cmd_synth(args: argparse.Namespace) -> None:
    from vad.stages import synth

    params = _params(args, {"synth": {"seed": args.seed}})
    synth.run(params.synth, Path(args.out))


def cmd_extract(args: argparse.Namespace) -> None:
    from vad.data.sources import resolve_source
    from vad.stages import extract

    size = args.size[0] if args.size and len(args.size) == 1 else args.size
    params = _params(args, {"data": {"image_size": size, "channels": args.channels, "format": args.format,
                                     "dataset": args.dataset, "clip_len": args.clip_len}})
    source = resolve_source(args.source, Path(args.cache_dir), sha256=args.sha256, progress=_progress())
    result = extract.run(params.data, source, Path(args.out), workers=args.workers, skip_corrupt=args.skip_corrupt,
                         progress=_progress())
    _write_metrics(args.metrics, result.metrics)


def cmd_validate(args: argparse.Namespace) -> None:
    from vad.stages import validate

    params = _params(args)
    validate.run(params.data, Path(args.frames), Path(args.report))


def cmd_data_fetch(args: argparse.Namespace) -> None:
    from vad.data.catalog import fetch

    folder = fetch(args.name, Path(args.out), progress=_progress())
    print(folder)


def _train_overrides(args: argparse.Namespace, section: str) -> dict[str, dict[str, Any]]:
    return {"": {"device": args.device},
            section: {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}}


def cmd_pretrain(args: argparse.Namespace) -> None:
    from vad.stages import pretrain

    params = _params(args, _train_overrides(args, "pretrain"))
    with _pipeline_run(args, params, "pretrain") as run:
        result = pretrain.run(params, Path(args.frames), Path(args.out), progress=_progress(), tracking=run)
    _write_metrics(args.metrics, result.metrics)


def cmd_init_clusters(args: argparse.Namespace) -> None:
    from vad.stages import init_clusters

    params = _params(args, {"": {"device": args.device}})
    with _pipeline_run(args, params, "init_clusters"):
        init_clusters.run(params, Path(args.frames), Path(args.pretrained), Path(args.out), progress=_progress())


def cmd_train(args: argparse.Namespace) -> None:
    from vad.stages import train

    params = _params(args, _train_overrides(args, "train"))
    with _pipeline_run(args, params, "train") as run:
        result = train.run(params, Path(args.frames), Path(args.init), Path(args.out), progress=_progress(),
                           tracking=run)
    _write_metrics(args.metrics, result.metrics)


def cmd_score(args: argparse.Namespace) -> None:
    from vad.model_source import model_folder
    from vad.stages import score

    params = _params(args, {"": {"device": args.device}, "score": {"batch_size": args.batch_size}})
    # The inputs first, before a model download: they are the likelier mistake.
    if args.frames:
        from vad.data.store import FrameStore

        FrameStore.open(Path(args.frames))
    score.check_videos([Path(video) for video in args.video or ()])
    with model_folder(args.model) as folder:
        if args.video:
            score.run_videos(params, [Path(v) for v in args.video], folder, Path(args.out))
        else:
            with _pipeline_run(args, params, "score"):
                score.run(params, Path(args.frames), folder, Path(args.out), progress=_progress())


def cmd_calibrate(args: argparse.Namespace) -> None:
    from vad.stages import calibrate

    params = _params(args, {"": {"device": args.device}})
    with _pipeline_run(args, params, "calibrate"):
        result = calibrate.run(params, Path(args.frames), Path(args.model), Path(args.out), args.normal or ())
    print(f"threshold {result.metrics['threshold']:.6g} from {int(result.metrics['calibration_frames'])} normal "
          f"frames{' (hold-out and --normal footage)' if args.normal else ' held out of training'}")


def cmd_detect(args: argparse.Namespace) -> int:
    from vad.model_source import model_folder
    from vad.stages import detect

    params = _params(args, {"": {"device": args.device}, "detect": {
        "false_alarms_per_hour": args.false_alarms_per_hour}})
    with model_folder(args.model) as folder:
        result = detect.run(params, args.source, folder, Path(args.out), threshold=args.threshold,
                            calibration_path=Path(args.calibration) if args.calibration else None,
                            on_event=lambda event: print(event.to_json(), flush=True),
                            progress=sys.stderr.isatty(), overlay=Path(args.overlay) if args.overlay else None)
    log.info("%d event(s) in %d frames; per-frame scores and events in %s", int(result.metrics["events"]),
             int(result.metrics["frames"]), args.out)
    # Stopped by a signal: the outputs are complete, and the exit status says how it ended, as for any command.
    signal_number = int(result.metrics["stopped_by_signal"])
    return 128 + signal_number if signal_number else 0


def cmd_evaluate(args: argparse.Namespace) -> None:
    from vad.calibration import Calibration
    from vad.stages import evaluate

    params = _params(args)
    calibration = Calibration.load(Path(args.calibration)) if args.calibration else None
    with _pipeline_run(args, params, "evaluate"):
        result = evaluate.run(Path(args.frames), Path(args.scores), Path(args.metrics), Path(args.plots),
                              calibration=calibration, detect=params.detect)
    if "auc_micro" not in result.metrics:
        print("no test labels: nothing to evaluate; `vad register` registers the model without AUCs")
        return
    print(f"micro AUC {result.metrics['auc_micro']:.4f}  macro AUC {result.metrics.get('auc_macro', float('nan')):.4f}")


def cmd_register(args: argparse.Namespace) -> None:
    from vad.stages import register

    params = _params(args, {"register": {"model_name": args.name}})
    with _pipeline_run(args, params, "register") as run:
        result = register.run(params, Path(args.frames), Path(args.pretrained), Path(args.model),
                              Path(args.metrics) if args.metrics else None,
                              Path(args.plots), Path(args.out), tracking=run,
                              artifacts=[Path(path) for path in args.artifact or ()],
                              lineage_path=Path(args.lineage) if args.lineage else None,
                              calibration_path=Path(args.calibration) if args.calibration else None)
    print(json.dumps({k: str(v) for k, v in result.outputs.items()} | result.metrics, default=str))


def _budget_seconds(text: str) -> float:
    """`60m`, `1.5h`, `900s`; a bare number is minutes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"budget {text!r}: expected minutes or a number with s, m or h, "
                                         "e.g. 60m or 1.5h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "": 60}[match.group(2)]


def cmd_fit(args: argparse.Namespace) -> None:
    from vad import fit

    fit.run(args.source, Path(args.out) if args.out else Path("fits") / (args.name or fit.dataset_name(args.source)),
            budget_s=args.budget, name=args.name, device=args.device, plan_only=args.plan_only, seed=args.seed,
            tracking_uri=args.tracking_uri, progress=_progress())


def cmd_promote(args: argparse.Namespace) -> None:
    from vad.tracking import MlflowTracker

    decision = MlflowTracker().promote(args.name, args.version, alias=args.alias, force=args.force)
    print(decision.reason)


def _pipelines(module: str):
    """Import `pipelines.<module>` from the working directory: the Kubeflow code lives at the repository root."""
    import importlib

    root = Path.cwd()
    if not (root / "pipelines" / "vad_pipeline.py").is_file():
        raise VadError(f"no pipelines/vad_pipeline.py in {root}; run `vad pipeline` from the repository root")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"pipelines.{module}")


def _preset(value: str) -> str | dict[str, Any]:
    """A preset name or JSON document as is; a .yaml/.yml file read into a params document."""
    if not value.endswith((".yaml", ".yml")):
        return value
    from vad.config import load_params

    return load_params(value).model_dump(mode="json", by_alias=True)


def cmd_pipeline_compile(args: argparse.Namespace) -> None:
    compile_module = _pipelines("compile")
    print(compile_module.compile_pipeline(args.out or compile_module.PACKAGE))


def cmd_pipeline_run_local(args: argparse.Namespace) -> None:
    run_local = _pipelines("local").run_local
    try:
        root = run_local(args.dataset, mlflow_tracking_uri=args.tracking_uri, preset=_preset(args.preset),
                         dataset_format=args.format, model_name=args.model_name, train_gpus=args.train_gpus,
                         normal_footage_uri=args.normal_footage, pipeline_root=args.root, runner=args.runner)
    except RuntimeError as error:  # kfp.local: a task failed; its log, printed above, ends with the reason
        raise VadError(f"{' '.join(str(error).split())}; see the failing task's log above") from None
    print(root)


def cmd_pipeline_submit(args: argparse.Namespace) -> None:
    submit = _pipelines("submit").submit
    params = {"dataset_uri": args.dataset, "mlflow_tracking_uri": args.tracking_uri, "preset": _preset(args.preset),
              "dataset_format": args.format, "model_name": args.model_name, "train_gpus": args.train_gpus,
              "normal_footage_uri": args.normal_footage}
    result = submit(args.host, args.package or _pipelines("compile").PACKAGE, args.experiment, params,
                    recurring_cron=args.cron)
    print(json.dumps(result))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `vad` (no heavy imports)."""
    from vad import __version__

    # The global options are accepted before or after the subcommand (`vad --debug score` and `vad score
    # --debug`); SUPPRESS keeps a subcommand's unset copy from overwriting the value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of user errors")
    parser = argparse.ArgumentParser(
        prog="vad", parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Video anomaly detection with spatio-temporal dissociation (Chang et al., 2021): extract, "
                    "train, score,\nevaluate and register models, one command per pipeline stage.",
        epilog="The whole pipeline: `dvc repro` (or `make run`) in the repository. One stage:\n"
               "  vad extract --source data/raw --out data/frames\n"
               "  vad pretrain --frames data/frames --out models/pretrain\n"
               "Values come from params.yaml (--params PATH); `vad COMMAND --help` lists a command's options.")
    parser.add_argument("--version", action="version", version=f"vad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=[common])
        sub.add_argument("--params", default="params.yaml",
                         help="parameters file (default: params.yaml; sections it leaves out take their defaults, "
                              "the paper's settings)")
        sub.set_defaults(handler=handler)
        return sub

    def tracked(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--run-file", help="JSON file holding the pipeline's MLflow run id: the stage logs into "
                                            "that run (a new one if it is missing or finished) and records it")

    def training(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--epochs", type=int)
        sub.add_argument("--batch-size", type=int)
        sub.add_argument("--lr", type=float)
        sub.add_argument("--device", help="auto, cpu, cuda or cuda:N")
        sub.add_argument("--metrics", help="write the stage's final metrics to this JSON file")

    sub = commands.add_parser(
        "fit", parents=[common], help="footage to a calibrated, registered detector within a time budget",
        description="Fit the method to a folder of footage within a time budget: probe this machine, plan the "
                    "setting (printed, and written as OUT/params.yaml), extract, train, calibrate, evaluate where the "
                    "test videos carry labels, and register. Re-running the same command after a kill resumes it.")
    sub.add_argument("source", help="anything `vad extract` reads: a dataset folder in any layout, a folder of "
                                    "normal videos, s3://bucket/prefix, an http(s):// archive")
    sub.add_argument("--budget", type=_budget_seconds, default=3600.0,
                     help="wall time for the whole fit: 60m, 1.5h, 900s (default: 60m)")
    sub.add_argument("--name", help="dataset name (registered model: vad-NAME; default: SOURCE's folder name)")
    sub.add_argument("--out", help="output folder (default: fits/NAME)")
    sub.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    sub.add_argument("--plan-only", action="store_true", help="print and write the plan, train nothing")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    sub.set_defaults(handler=cmd_fit)

    sub = command("synth", cmd_synth, "generate the synthetic dataset (videos layout)")
    sub.add_argument("--out", required=True)
    sub.add_argument("--seed", type=int)

    sub = command("extract", cmd_extract, "decode a dataset into the frame store")
    sub.add_argument("--source", required=True, help="dataset folder, s3://bucket/prefix or http(s):// archive")
    sub.add_argument("--out", required=True, help="frame store folder to write")
    sub.add_argument("--format", help="dataset layout: auto, ucsd, frames, avenue, shanghaitech or videos")
    sub.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    sub.add_argument("--skip-corrupt", action="store_true", help="skip and report videos that cannot be decoded")
    sub.add_argument("--cache-dir", default=".vad-cache", help="where s3:// and http(s):// sources are downloaded")
    sub.add_argument("--sha256", help="expected sha256 of an http(s) archive")
    sub.add_argument("--size", type=int, nargs="+", help="N for N x N, or H W")
    sub.add_argument("--channels", type=int, choices=[1, 3])
    sub.add_argument("--clip-len", type=int)
    sub.add_argument("--dataset", help="dataset name (registered model: vad-<dataset>)")
    sub.add_argument("--metrics")

    sub = command("validate", cmd_validate, "check the frame store with great-expectations before training")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--report", required=True, help="JSON validation report to write")

    data = commands.add_parser("data", help="dataset helpers", description="dataset helpers")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    fetch = data_commands.add_parser("fetch", help="download a public dataset (ped1, ped2, avenue)")
    fetch.add_argument("name")
    fetch.add_argument("--out", default="data/downloads")
    fetch.set_defaults(handler=cmd_data_fetch)

    pipeline = commands.add_parser("pipeline", help="the Kubeflow pipeline (run from the repository root)",
                                   description="compile, run locally or submit the Kubeflow pipeline; run from the "
                                               "repository root, which holds components/ and pipelines/")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="COMMAND")
    sub = pipeline_commands.add_parser("compile", help="compile pipelines/vad_pipeline.yaml (image: $VAD_IMAGE)")
    sub.add_argument("--out", help="YAML to write (default: pipelines/vad_pipeline.yaml)")
    sub.set_defaults(handler=cmd_pipeline_compile)

    def pipeline_arguments(sub: argparse.ArgumentParser, preset: str) -> None:
        sub.add_argument("--dataset", required=True, help="dataset URI: folder, s3://, http(s):// archive or "
                                                          "dvc://<repo>#<path>[@<rev>]")
        sub.add_argument("--preset", default=preset, help=f"ped2, avenue, shanghaitech, a params document as JSON or "
                                                          f"a params YAML file (default: {preset})")
        sub.add_argument("--format", default="auto", help="dataset layout (default: auto)")
        sub.add_argument("--model-name", default="", help="registered model name (default: the preset's)")
        sub.add_argument("--train-gpus", type=int, default=1, help="GPUs of the train task; above 1 it runs "
                                                                   "data-parallel with torchrun (default: 1)")
        sub.add_argument("--normal-footage", default="", metavar="URI",
                         help="normal videos the model never trained on, to calibrate the alarm threshold on with "
                              "the hold-out (vad calibrate --normal): a folder, s3://, http(s):// archive or dvc://")

    sub = pipeline_commands.add_parser("run-local", help="run the whole DAG here with kfp's local runner")
    pipeline_arguments(sub, "params.yaml")
    sub.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    sub.add_argument("--root", default=".kfp-local", help="folder for the task artifacts (default: .kfp-local)")
    sub.add_argument("--runner", choices=("subprocess", "docker"), default="subprocess",
                     help="subprocess: tasks run in this Python; docker: in their images, through $DOCKER_HOST "
                          "(default: subprocess)")
    sub.set_defaults(handler=cmd_pipeline_run_local)

    sub = pipeline_commands.add_parser("submit", help="upload the compiled pipeline to Kubeflow and start a run")
    sub.add_argument("--host", required=True, help="Kubeflow Pipelines API endpoint")
    pipeline_arguments(sub, "ped2")
    sub.add_argument("--tracking-uri", default="", help="MLflow tracking URI as the cluster reaches it (default: "
                                                        "MLFLOW_TRACKING_URI of the vad-mlflow secret)")
    sub.add_argument("--experiment", default="vad", help="Kubeflow experiment (default: vad)")
    sub.add_argument("--cron", help="also schedule retraining: six-field cron, seconds first, e.g. '0 0 3 * * 1'")
    sub.add_argument("--package", help="compiled pipeline (default: pipelines/vad_pipeline.yaml)")
    sub.set_defaults(handler=cmd_pipeline_submit)

    sub = command("pretrain", cmd_pretrain, "pretrain both autoencoders")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--out", required=True)
    training(sub)
    tracked(sub)

    sub = command("init-clusters", cmd_init_clusters, "initialise the cluster centers with k-means++")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--pretrained", required=True, help="output folder of `vad pretrain`")
    sub.add_argument("--out", required=True)
    sub.add_argument("--device")
    tracked(sub)

    sub = command("train", cmd_train, "alternating training of the autoencoders and the centers")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--init", required=True, help="output folder of `vad init-clusters`")
    sub.add_argument("--out", required=True)
    training(sub)
    tracked(sub)

    sub = command("score", cmd_score, "score every test frame (or every frame of --video files); write scores.csv")
    inputs = sub.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--frames", help="frame store whose test videos to score")
    inputs.add_argument("--video", action="append", help="a video file to score directly (repeatable)")
    sub.add_argument("--model", required=True, help="output folder of `vad train`, or an MLflow model URI "
                                                    "(models:/vad-synthetic@champion, runs:/<id>/model)")
    sub.add_argument("--out", required=True, help="scores.csv to write")
    sub.add_argument("--batch-size", type=int)
    sub.add_argument("--device")
    tracked(sub)

    sub = command("calibrate", cmd_calibrate, "choose the alarm threshold on normal footage held out of training")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--model", required=True, help="output folder of `vad train`")
    sub.add_argument("--out", required=True, help="calibration JSON to write (e.g. models/calibration.json)")
    sub.add_argument("--normal", nargs="+", metavar="FOOTAGE",
                     help="more normal footage the model never trained on (video files, folders of videos): the "
                          "threshold is chosen on it too; a strict budget needs hours of it")
    sub.add_argument("--device")
    tracked(sub)

    sub = command("detect", cmd_detect, "raise alarms on footage: events as JSON lines, per-frame scores")
    sub.add_argument("source", nargs="+", help="video files, folders of videos, camera indices (0) or stream URLs "
                                               "(rtsp://..., http://.../stream.mjpg); Ctrl-C or SIGTERM stops "
                                               "cleanly, outputs complete")
    sub.add_argument("--model", required=True, help="output folder of `vad train` or an MLflow model URI "
                                                    "(models:/vad-synthetic@champion)")
    sub.add_argument("--out", default="detections", help="folder for scores.csv and events.jsonl "
                                                         "(default: detections)")
    sub.add_argument("--calibration", help="calibration JSON (default: the model's calibration.json)")
    sub.add_argument("--threshold", type=float, help="raw anomaly score above which a frame is abnormal "
                                                     "(default: from the calibration)")
    sub.add_argument("--false-alarms-per-hour", type=float, help="false-alarm budget (default: params.yaml)")
    sub.add_argument("--overlay", metavar="OUT.mp4", help="also write a video of each frame with its anomaly "
                                                          "heatmap, score timeline and alarm mark")
    sub.add_argument("--device")

    sub = command("evaluate", cmd_evaluate, "frame-level AUC, ROC curve and score plots")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--scores", required=True)
    sub.add_argument("--metrics", required=True, help="JSON metrics file to write")
    sub.add_argument("--plots", required=True, help="folder for roc.csv and the score plots")
    sub.add_argument("--calibration", help="calibration JSON of `vad calibrate`: also measure the alarms at its "
                                           "threshold (precision, recall, event recall, false alarms per minute)")
    tracked(sub)

    sub = command("register", cmd_register, "log the pipeline run to MLflow, register and promote the model")
    sub.add_argument("--frames", required=True)
    sub.add_argument("--pretrained", required=True)
    sub.add_argument("--model", required=True)
    sub.add_argument("--metrics", help="metrics JSON of `vad evaluate`; leave it out for footage without test labels "
                                       "(registered without AUCs, promoted only where no champion exists)")
    sub.add_argument("--plots", required=True)
    sub.add_argument("--out", required=True, help="JSON summary of the registration (run id, version, decision)")
    sub.add_argument("--lineage", help="JSON of what the inputs determine (model and data digests, AUC), for DVC")
    sub.add_argument("--calibration", help="calibration JSON of `vad calibrate`, packaged with the model")
    sub.add_argument("--name", help="registered model name (default vad-<dataset>)")
    sub.add_argument("--artifact", action="append", help="a file to log with the run under pipeline/ (repeatable; "
                                                         "e.g. params.yaml, dvc.lock, the validation report)")
    tracked(sub)

    sub = command("promote", cmd_promote, "move the champion alias to a model version (same rule as register)")
    sub.add_argument("name")
    sub.add_argument("version")
    sub.add_argument("--alias", default="champion")
    sub.add_argument("--force", action="store_true", help="promote even if it does not beat the champion")
    return parser


class _Terminated(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error of the stage's own
    """SIGTERM arrived."""


def _terminated(signum: int, frame: Any) -> None:
    raise _Terminated(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vad` console script."""
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    args.debug, args.log_level = getattr(args, "debug", False), getattr(args, "log_level", "INFO")
    # Libraries log their own INFO chatter (great-expectations: ~200 lines per validation); at INFO the user
    # sees this product's lines and kfp's task logs, and every library's warnings.
    logging.basicConfig(level=logging.WARNING if args.log_level != "DEBUG" else logging.DEBUG,
                        format="%(message)s", stream=sys.stderr)
    for name in ("vad", "kfp"):
        logging.getLogger(name).setLevel(args.log_level)
    if not args.debug:  # urllib3 logs each retry; the error that ends them is the one line the user needs
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    # MLflow sets up its own INFO handler when imported (database migrations, "Created version ..."): the
    # same rule, its warnings only, unless the user set its level or asked for DEBUG.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if args.log_level == "DEBUG" else "WARNING")
    # SIGTERM (kill, a Kubernetes pod stopped) unwinds like Ctrl-C: temporary files go, the MLflow run is marked.
    previous = _on_sigterm(_terminated)
    try:
        code = args.handler(args)
    except VadError as error:
        if args.debug:
            raise
        log.error("error: %s", error)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except _Terminated:
        log.error("terminated")
        return 143
    except OSError as error:  # a full disk outside the atomic writers (e.g. a library's own download)
        if args.debug or not is_disk_full(error):
            raise
        log.error("error: %s", disk_full(Path(error.filename or ".")))
        return 2
    finally:
        _on_sigterm(previous)
    return code if isinstance(code, int) else 0


def _on_sigterm(handler: Any) -> Any:
    """Install `handler` for SIGTERM (main thread only: Python's rule) and return the previous one."""
    import threading

    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())
