"""Typed, validated parameters: one frozen pydantic model per `params.yaml` section.

Defaults live here and nowhere else. The defaults are the paper's settings (Sec. 4.2 and the method
specification in DESIGN.md); the repository's `params.yaml` overrides them for the fast synthetic demo.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vad.errors import ConfigError

__all__ = [
    "Layout", "DataParams", "SynthParams", "ModelParams", "PretrainParams", "InitClustersParams",
    "TrainParams", "ScoreParams", "DetectParams", "RegisterParams", "Amp", "PerfParams", "Params", "load_params",
    "parse_params", "resolve_preset",
]

# Three stride-2 blocks and an attention grid of size/16 per side: sides must be multiples of 16.
_SIZE_MULTIPLE = 16


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `epochs: true` as 1; in a params file that is always a slip.
        if isinstance(value, bool) and not _accepts_bool(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number or a name, got a boolean (true/false)")
        return value


def _accepts_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or any(_accepts_bool(arg) for arg in get_args(annotation))


class Layout(str, Enum):
    """Input dataset layouts `vad extract` reads (see DESIGN.md, "Input layouts")."""

    AUTO = "auto"
    UCSD = "ucsd"
    FRAMES = "frames"
    AVENUE = "avenue"
    SHANGHAITECH = "shanghaitech"
    VIDEOS = "videos"


class DataParams(_Section):
    """What every stage agrees on: the dataset name and the frame geometry of the frame store."""

    dataset: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")] = "synthetic"
    format: Layout = Layout.VIDEOS
    image_size: tuple[Annotated[int, Field(ge=16, le=4096)], Annotated[int, Field(ge=16, le=4096)]] = (256, 256)
    channels: Annotated[int, Field()] = 3
    clip_len: Annotated[int, Field(ge=2, le=32)] = 5
    # The network's window: None, the whole frame; [h, w], training on random h x w crops of the frames and
    # scoring every frame tile by tile (docs/ped2.md, "Tiles"). Frame sides must be multiples of it.
    tile: tuple[Annotated[int, Field(ge=16, le=4096)], Annotated[int, Field(ge=16, le=4096)]] | None = None
    # Score with tiles at half a tile's stride, each pixel from the tile it lies most central in: no seams
    # along the tile borders, where a tile sees zero padding instead of the scene (docs/ped2.md, run 12).
    # 9/4 of the scoring cost at two tiles per side. Training (random crops) does not change.
    tile_overlap: bool = False

    @field_validator("image_size", "tile", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("image_size", "tile")
    @classmethod
    def _multiple(cls, value: tuple[int, int] | None, info: ValidationInfo) -> tuple[int, int] | None:
        if value is not None and any(side % _SIZE_MULTIPLE for side in value):
            raise ValueError(
                f"{info.field_name.replace('_', ' ')} {list(value)} is not a multiple of {_SIZE_MULTIPLE} per side, "
                f"which the network needs (three stride-2 blocks and a size/16 attention grid); use e.g. 64, 128 or 256"
            )
        return value

    @model_validator(mode="after")
    def _tiles_the_frame(self) -> DataParams:
        if self.tile is not None and any(side % tile for side, tile in zip(self.image_size, self.tile, strict=True)):
            raise ValueError(f"tile {list(self.tile)} does not tile image_size {list(self.image_size)}: each side of "
                             "the frame must be a whole multiple of the tile's (e.g. 256 and 128)")
        if self.tile_overlap and self.tile is not None and any(side % 32 for side in self.tile):
            raise ValueError(f"tile_overlap needs tile sides that are multiples of 32, got {list(self.tile)}: a "
                             "quarter tile must be whole latent cells (1/8 of a pixel side); use e.g. 64 or 128")
        return self

    @property
    def window(self) -> tuple[int, int]:
        """What the network sees at once: the tile, or the whole frame."""
        return self.tile or self.image_size

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {value}")
        return value


class SynthParams(_Section):
    """The embedded synthetic dataset (`vad synth`)."""

    seed: int = 0
    train_videos: Annotated[int, Field(ge=1, le=1000)] = 8
    test_videos: Annotated[int, Field(ge=1, le=1000)] = 6
    frames: Annotated[int, Field(ge=16, le=100_000)] = 80
    height: Annotated[int, Field(ge=32, le=2048)] = 96
    width: Annotated[int, Field(ge=32, le=2048)] = 128
    fps: Annotated[int, Field(ge=1, le=240)] = 10
    # Test video i holds one anomaly of kind anomalies[i % len(anomalies)].
    anomalies: Annotated[tuple[Literal["appearance", "motion_fast", "motion_across"], ...], Field(min_length=1)] = (
        "appearance", "motion_fast", "motion_across")


class ModelParams(_Section):
    """Network and ablation switches (Tables 2 and 3)."""

    # stem channels; the paper's 32 gives 32-64-128-256. Even, so the U-Net skips split into PixelShuffle groups.
    width: Annotated[int, Field(ge=2, le=256, multiple_of=2)] = 32
    appearance: bool = True
    motion: bool = True
    attention: bool = True
    kmeans: bool = True
    clusters: Annotated[int, Field(ge=1, le=4096)] = 32
    alpha: Annotated[float, Field(gt=0)] = 25.0
    # D(r) of Eq. 10 (the cluster loss and the score's map): `squared` soft-assigned squared distance, the
    # paper's formula; `euclidean` the soft-assigned distance itself, as the authors' code computes it
    # (docs/ped2.md).
    cluster_distance: Literal["squared", "euclidean"] = "squared"
    # D(r) summed over the K centers (`sum`, Eq. 10) or averaged (`mean`, the authors' code): the cluster
    # loss then weighs K times less against L_a + L_m (docs/ped2.md, run 9).
    cluster_reduction: Literal["sum", "mean"] = "sum"
    # The motion loss (Eq. 6) as the authors' code computes it: squared error plus w_grad times the gradient
    # loss between the predicted frame f0 + d_hat and f4, w_grad 0.01. `difference` with w_grad 1 is the
    # literal reading of Eq. 6 (gradients of d_hat against d); on Ped2 it fits worse than d_hat = 0
    # (docs/ped2.md).
    w_grad: Annotated[float, Field(ge=0)] = 0.01
    gradient_on: Literal["frame", "difference"] = "frame"
    # The motion U-Net's decoder as the authors' code builds it (from z_m alone, 4w-2w-2w); `wide` adds a
    # skip at 1/8 resolution that lets the prediction bypass z_m (this product before 2026-12-02).
    motion_decoder: Literal["authors", "wide"] = "authors"

    @model_validator(mode="after")
    def _one_stream(self) -> ModelParams:
        if not (self.appearance or self.motion):
            raise ValueError("at least one of model.appearance and model.motion must be true")
        return self


class PretrainParams(_Section):
    """Autoencoder pretraining on L_a + L_m."""

    epochs: Annotated[int, Field(ge=1)] = 50
    max_clips_per_epoch: Annotated[int, Field(ge=1)] | None = None  # None: every clip; a cap for time-boxed runs
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 8
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-4


class InitClustersParams(_Section):
    """K-means++ initialisation of the cluster centers from pretrained features."""

    sample_clips: Annotated[int, Field(ge=1)] = 2000  # training clips whose latent vectors are sampled
    max_vectors: Annotated[int, Field(ge=1)] = 200_000  # cap on vectors given to k-means
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32


class TrainParams(_Section):
    """Alternating training: AEs with centers frozen, then centers with AEs frozen, batch by batch."""

    epochs: Annotated[int, Field(ge=1)] = 100
    max_clips_per_epoch: Annotated[int, Field(ge=1)] | None = None  # None: every clip; a cap for time-boxed runs
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 8
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-4
    lr_milestones: list[Annotated[int, Field(ge=1)]] = [100]
    lr_gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    center_lr: Annotated[float, Field(gt=0, le=1)] = 1e-5
    lambda_r: Annotated[float, Field(ge=0)] = 0.1
    # true: the autoencoders' Adam continues from pretraining (its moments and step count, at `lr`), one
    # schedule across both phases; false: a fresh Adam (the paper does not say which). docs/ped2.md, run 10.
    continue_adam: bool = False


class Amp(str, Enum):
    """Mixed precision of the training forward pass (`perf.amp`)."""

    AUTO = "auto"  # bf16 on CUDA GPUs with native bfloat16 (Ampere or newer), else off
    BF16 = "bf16"  # bf16 autocast on any device (CPU included); an error on a GPU without native bf16
    OFF = "off"


def _auto_or_bool(value: Any) -> Any:
    if value == "auto" or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("expected auto, true or false")


AutoSwitch = Annotated[Literal["auto"] | bool, BeforeValidator(_auto_or_bool)]


class PerfParams(_Section):
    """Speed switches of `pretrain` and `train`. They change float rounding, not the method.

    `auto` turns a switch on for CUDA devices only. None of them is part of a checkpoint's run key, so a
    run can be resumed with other settings (as with `device`).
    """

    amp: Amp = Amp.AUTO
    channels_last: AutoSwitch = "auto"  # NHWC weights and activations (tensor-core friendly)
    fused_adam: AutoSwitch = "auto"  # torch.optim.Adam(fused=True): one kernel per step
    compile: bool = False  # torch.compile the network: faster steps after a warm-up of a minute or so
    # CPU threads of torch's operators; None: torch's default (one per core). On cores that another job also
    # uses, one thread can be many times faster than the default: `vad fit` measures both and writes the faster.
    threads: Annotated[int, Field(ge=1, le=1024)] | None = None

    @field_validator("amp", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 (PyYAML) reads a bare `off` as false.
        return "off" if value is False else value


class ScoreParams(_Section):
    """Clip scoring."""

    batch_size: Annotated[int, Field(ge=1, le=65536)] = 64
    # The cluster map D that Eq. 13 multiplies the prediction error by: `model`, the distance the network was
    # trained with (model.cluster_distance); or `squared` (the paper's Eq. 10) or `euclidean` (the authors' code)
    # whatever it was trained with. Chosen per configuration without test labels (docs/ped2.md, run 7).
    cluster_distance: Literal["model", "squared", "euclidean"] = "model"


class DetectParams(_Section):
    """Alarms on footage: the held-out normal footage that calibrates the threshold, and the events."""

    # The last share of each training video is held out from every gradient step and from k-means; the
    # calibrate stage scores it to choose the threshold (vad.calibration).
    holdout_share: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    false_alarms_per_hour: Annotated[float, Field(gt=0)] = 1.0
    fps: Annotated[float, Field(gt=0)] = 25.0  # frame rate assumed where the footage does not tell its own
    # The alarm score (vad.calibration.alarm_score): the map, the paper's e * D_u ("fused") or the prediction
    # error e alone ("prediction") or e relative to the network's mean error there on its training footage
    # ("relative", vad.scoring.normal_error_map), pooled over the frame by its mean (the paper's) or by its worst
    # window of 2x2 latent cells ("window"). The paper's Eq. 14 AUC does not depend on it.
    map: Literal["fused", "prediction", "relative"] = "fused"
    pooling: Literal["mean", "window"] = "mean"
    min_event_frames: Annotated[int, Field(ge=1)] = 3  # shorter bursts above the threshold raise no alarm
    merge_gap_frames: Annotated[int, Field(ge=0)] = 5  # bursts this close are one event
    # A live source (camera, stream URL) that cannot be opened or drops is reopened this many times in a row,
    # waiting 0.5 s, 1 s, 2 s, ... (at most reconnect_max_delay_s) in between, before detection gives up.
    reconnect_attempts: Annotated[int, Field(ge=0, le=1000)] = 5
    reconnect_max_delay_s: Annotated[float, Field(gt=0, le=600)] = 8.0
    stream_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0  # opening, or waiting for one frame


class RegisterParams(_Section):
    """MLflow run logging, registration and promotion."""

    experiment: Annotated[str, Field(min_length=1)] = "vad"
    model_name: str | None = None  # default: vad-<data.dataset>
    alias: Annotated[str, Field(min_length=1)] = "champion"


class Params(_Section):
    """A whole `params.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    seed: int = 0
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda|cuda:\d+|mps)$")] = "auto"
    data: DataParams = DataParams()
    synth: SynthParams = SynthParams()
    model: ModelParams = ModelParams()
    pretrain: PretrainParams = PretrainParams()
    init_clusters: InitClustersParams = InitClustersParams()
    train: TrainParams = TrainParams()
    score: ScoreParams = ScoreParams()
    detect: DetectParams = DetectParams()
    perf: PerfParams = PerfParams()
    # `register` would shadow pydantic's (ABCMeta) `BaseModel.register`; the YAML key stays `register`.
    registry: RegisterParams = Field(default=RegisterParams(), alias="register")

    @property
    def model_name(self) -> str:
        """Registered model name: `register.model_name`, else `vad-<dataset>`."""
        return self.registry.model_name or f"vad-{self.data.dataset}"


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}'; remove it or fix its spelling (see vad/config.py for the keys)"
    message = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    more = f" and {len(error.errors()) - 1} more problem(s)" if len(error.errors()) > 1 else ""
    return f"{source}: {key}: {message}{shown}{more}; fix it in {source}"


def parse_params(document: dict[str, Any] | None, source: str = "params") -> Params:
    """Validate a params document (the parsed YAML), raising ConfigError naming the bad key."""
    try:
        return Params.model_validate(document or {})
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def resolve_preset(preset: str | dict[str, Any], presets: dict[str, dict[str, Any]], *, dataset_format: str,
                   model_name: str = "") -> Params:
    """Pipeline parameters -> validated params: a preset name (in `presets`) or a params document (dict or JSON).

    `dataset_format` overrides data.format; a non-empty `model_name` overrides register.model_name.
    """
    import json

    names = ", ".join(sorted(presets))
    if isinstance(preset, dict):
        document = preset
    elif preset.lstrip().startswith("{"):
        try:
            document = json.loads(preset)
        except ValueError as error:
            raise ConfigError(f"pipeline parameter preset is not valid JSON ({error}); pass {names} "
                              "or a params document") from None
    elif preset in presets:
        document = presets[preset]
    else:
        raise ConfigError(f"unknown preset {preset!r}; expected {names} or a params document as JSON; "
                          "set the pipeline parameter preset")
    registry = {**document.get("register", {}), **({"model_name": model_name} if model_name else {})}
    document = {**document, "data": {**document.get("data", {}), "format": dataset_format}, "register": registry}
    return parse_params(document, "pipeline parameters preset, dataset_format and model_name")


def load_params(path: str | Path) -> Params:
    """Read and validate a params YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found; pass --params PATH or create params.yaml")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or error.__class__.__name__
        raise ConfigError(f"{path}: not valid YAML ({where}{problem}); fix the syntax there") from None
    if document is not None and not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return parse_params(document, str(path))
