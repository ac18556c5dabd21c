"""What every benchmark script shares: the machine description, peak memory, and the JSON-lines record."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from datetime import date
from pathlib import Path

# Where records go: docs/benchmarks.jsonl, or BENCHMARKS_JSONL (the tests point it at a temporary file).
JSONL = Path(os.environ.get("BENCHMARKS_JSONL") or Path(__file__).resolve().parents[1] / "docs" / "benchmarks.jsonl")

# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets, by device-name
# substring: the denominator of "achieved share of peak". Unknown devices report no share.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 756.0, "A100": 312.0,
                    "L40S": 362.0, "A10G": 70.0, "L4": 121.0, "RTX 4090": 165.0}


def machine() -> dict[str, str | int]:
    """CPU model, cores, GPU name (if torch sees one), Python and torch versions."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    info: dict[str, str | int] = {"cpu": cpu, "cores": os.cpu_count() or 0, "python": platform.python_version()}
    if "torch" in sys.modules or _importable("torch"):
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return info


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def peak_bf16_tflops(gpu_name: str) -> float | None:
    """The data-sheet dense bf16 peak of a GPU, or None when unknown (or on CPU)."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in gpu_name), None) if gpu_name else None


def peak_host_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(record: dict, jsonl: Path = JSONL) -> None:
    """Print `record` one key per line and append it, with today's date and the machine, to `jsonl`."""
    record = {"benchmark": record.pop("benchmark"), "date": date.today().isoformat(), **machine(), **record}
    width = max(map(len, record))
    for key, value in record.items():
        print(f"{key:>{width}}: {value:.4g}" if isinstance(value, float) else f"{key:>{width}}: {value}")
    jsonl.parent.mkdir(exist_ok=True)
    with jsonl.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def peak_gpu_mb() -> float | None:
    """Peak memory allocated by torch on the current GPU so far, in MB (None without CUDA)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def flops_per_clip(model, clip, *, backward: bool = False) -> float:
    """FLOPs of the network on one clip (1, T, C, H, W), from torch's flop counter.

    With `backward`, those of a training step: forward and backward of the autoencoder losses.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vad.models.losses import autoencoder_losses

    with FlopCounterMode(display=False) as counter:
        if backward:
            sum(autoencoder_losses(model(clip), 1.0).values()).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                model(clip)
    return float(counter.get_total_flops())


def compute_figures(flops_per_item: float, items_per_s: float, gpu: str) -> dict[str, float | None]:
    """Achieved TFLOP/s and, on a GPU with a known data-sheet peak, its share of the bf16 peak."""
    achieved = flops_per_item * items_per_s / 1e12
    peak = peak_bf16_tflops(gpu)
    return {"achieved_tflops": round(achieved, 4), "peak_bf16_tflops": peak,
            "share_of_peak": round(achieved / peak, 4) if peak else None}


def override_preset(params, *, size: int | None = None, channels: int | None = None, width: int | None = None):
    """`params` with the frame size, channels and network width replaced where given."""
    data = {k: v for k, v in {"image_size": size and (size, size), "channels": channels}.items() if v}
    return params.model_copy(update={"data": params.data.model_copy(update=data),
                                     "model": params.model.model_copy(update={"width": width or params.model.width})})


def forward_only_frames_per_s(model, batches: list, use_clusters: bool = True, amp_dtype=None,
                              passes: int = 1) -> float:
    """Clips/s of the network and the score arithmetic alone on prebuilt batches; best of `passes`."""
    import time

    import torch

    from vad.scoring import clip_scores

    device = batches[0].device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = 0.0
    for _ in range(passes):
        sync()
        started = time.perf_counter()
        for batch in batches:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                clip_scores(model, batch, use_clusters)
        sync()
        best = max(best, sum(len(b) for b in batches) / (time.perf_counter() - started))
    return best


def trained_model_on_frames(doc: str, unseen: bool = False):
    """The command line of a diagnostic script (`--frames`, `--model` stage folder, `--json`), parsed.

    `unseen` adds `--unseen`: the training videos of `--frames` are whole videos the model never saw.

    Returns (args, the trained model's `Trained`, the frame store), gradients off.
    """
    import argparse

    import torch

    from vad.checkpoint import CHECKPOINT
    from vad.data.store import FrameStore
    from vad.models import load_trained

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="stage folder holding checkpoint.pt")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--tile-overlap", choices=("model", "on", "off"), default="model",
                        help="score a tiled network with overlapping tiles (data.tile_overlap) or not; "
                             "model: as its checkpoint says")
    if unseen:
        parser.add_argument("--unseen", action="store_true",
                            help="the training videos of --frames are footage the model never saw: use them whole")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    trained = load_trained(args.model / CHECKPOINT)
    if args.tile_overlap != "model":
        trained.model.tile_overlap = args.tile_overlap == "on"
    return args, trained, FrameStore.open(args.frames)
