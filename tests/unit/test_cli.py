"""The `vad` command: user errors print one line naming the input and the fix, exit 2, no traceback."""

import subprocess
import sys

import pytest


def vad(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vad", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_help_lists_every_stage():
    result = vad("--help")
    assert result.returncode == 0
    for stage in ["synth", "extract", "pretrain", "init-clusters", "train", "score", "evaluate", "register", "promote"]:
        assert stage in result.stdout


def test_missing_dataset_path(tmp_path):
    result = vad("extract", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line_error(result, "missing", "does not exist", "s3://bucket/prefix")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("yaml_text,needles", [
    ("train:\n  epocs: 3\n", ["unknown key 'train.epocs'"]),
    ("train:\n  lr: -0.001\n", ["train.lr", "greater than 0"]),
    ("data:\n  image_size: [100, 100]\n", ["data.image_size", "multiple of 16"]),
])
def test_bad_params_file(tmp_path, yaml_text, needles):
    (tmp_path / "params.yaml").write_text(yaml_text)
    result = vad("pretrain", "--frames", "f", "--out", "o", cwd=tmp_path)
    assert_one_line_error(result, "params.yaml", *needles)


def test_bad_option_value_names_the_key(tmp_path):
    result = vad("extract", "--source", ".", "--out", "o", "--size", "50", cwd=tmp_path)
    assert_one_line_error(result, "data.image_size", "command-line options")


def test_missing_frame_store(tmp_path):
    result = vad("score", "--frames", str(tmp_path / "nothing"), "--model", "m", "--out", "s.csv", cwd=tmp_path)
    assert_one_line_error(result, "run `vad extract` first")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_subcommand(tmp_path, where):
    command = ["extract", "--source", str(tmp_path / "missing"), "--out", "o"]
    result = vad(*(["--debug", *command] if where == "before" else [*command, "--debug"]), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_version():
    from vad import __version__

    result = vad("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"vad {__version__}"


def test_score_of_a_missing_video_file(tmp_path):
    result = vad("score", "--video", str(tmp_path / "cam1.mp4"), "--model", "m", "--out", "s.csv", cwd=tmp_path)
    assert_one_line_error(result, "cam1.mp4", "not found", "--video")
    assert not (tmp_path / "s.csv").exists()


def test_score_takes_video_files_directly(trained, raw_dataset, make_document, tmp_path):
    import csv

    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(make_document()))
    videos = sorted((raw_dataset / "test").glob("*.avi"))[:2]
    result = vad("score", "--video", str(videos[0]), "--video", str(videos[1]), "--model", str(trained["train"]),
                 "--out", "s.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert {r["video"] for r in rows} == {v.stem for v in videos}
    assert len(rows) == 2 * 30 and sum(r["scored"] == "1" for r in rows) == 2 * (30 - 4)


def test_validate_prints_its_result_and_nothing_of_great_expectations(frame_store, tmp_path):
    done = vad("validate", "--frames", str(frame_store), "--report", str(tmp_path / "report.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"frame store {frame_store} passed"), lines


def test_help_speaks_to_users_and_shows_how_to_start():
    result = vad("--help")
    assert "console script" not in result.stdout and "vad.stages" not in result.stdout  # no developer text
    assert result.stdout.split("\n\n")[1].startswith("Video anomaly detection with spatio-temporal dissociation")
    assert "dvc repro" in result.stdout and "vad extract --source" in result.stdout


def test_a_partial_params_file_says_which_sections_take_their_defaults(frame_store, tmp_path):
    (tmp_path / "partial.yaml").write_text("data:\n  image_size: [32, 32]\n  channels: 1\n")
    result = vad("validate", "--params", "partial.yaml", "--frames", str(frame_store), "--report", "r.json",
                 "--log-level", "DEBUG", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "their defaults apply" in line]
    assert "partial.yaml sets no seed, device, synth, model" in line and " data" not in line
