import pytest

from vad.config import load_params, parse_params
from vad.errors import ConfigError

REPO_FILES = ["params.yaml", "configs/ped2.yaml", "configs/avenue.yaml", "configs/shanghaitech.yaml"]


@pytest.mark.parametrize("name", REPO_FILES)
def test_repository_params_files_are_valid(name):
    from pathlib import Path

    params = load_params(Path(__file__).resolve().parents[2] / name)
    assert params.data.image_size[0] % 16 == 0


def test_presets_hold_the_paper_schedule():
    from pathlib import Path

    ped2 = load_params(Path(__file__).resolve().parents[2] / "configs/ped2.yaml")
    assert (ped2.pretrain.epochs, ped2.train.epochs, ped2.model.clusters, ped2.train.lambda_r) == (50, 100, 32, 0.1)
    assert ped2.data.image_size == (256, 256) and ped2.model_name == "vad-ped2"


@pytest.mark.parametrize("document,needle", [
    ({"trian": {"epochs": 1}}, "unknown key 'trian'"),
    ({"train": {"lr": -0.1}}, "train.lr"),
    ({"train": {"learning_rate": 0.1}}, "unknown key 'train.learning_rate'"),
    ({"data": {"image_size": [60, 64]}}, "data.image_size"),
    ({"data": {"channels": 2}}, "data.channels"),
    ({"model": {"appearance": False, "motion": False}}, "model"),
    ({"device": "gpu0"}, "device"),
    ({"pretrain": {"epochs": True}}, "pretrain.epochs: expected a number or a name, got a boolean"),
    ({"seed": False}, "seed: expected a number"),
    ({"data": {"image_size": True}}, "data.image_size"),
])
def test_invalid_params_name_the_key(document, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")) as info:
        parse_params(document, "params.yaml")
    assert "params.yaml" in str(info.value) and "\n" not in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("model:\n  width: 8\ndata: [1, 2\npretrain:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(line 4, column 9: expected ',' or ']'") as info:
        load_params(bad)
    assert "\n" not in str(info.value)


def test_switches_still_take_booleans():
    params = parse_params({"model": {"attention": False}, "perf": {"compile": True}})
    assert params.model.attention is False and params.perf.compile is True


def test_square_size_shorthand_and_default_model_name():
    params = parse_params({"data": {"image_size": 64, "dataset": "cam7"}})
    assert params.data.image_size == (64, 64) and params.model_name == "vad-cam7"
