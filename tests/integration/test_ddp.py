"""Data-parallel training: `torchrun --nproc_per_node=2 vad pretrain|train` on the CPU (gloo).

One torchrun launch runs both stages, through the CLI, for two networks: the full one (BatchNorm in the
spatial encoder) and the motion stream alone (no BatchNorm). A test-only worker wraps `fit` to save each
rank's final state, so the ranks can be compared with each other and with rank 0's checkpoint. The same
params then run in one process; `batch_size` is the global batch, so both runs see the same batches.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from vad.checkpoint import load_checkpoint
from vad.data.clips import ClipSource
from vad.data.store import FrameStore
from vad.distributed import Distributed, torchrun_env
from vad.errors import ConfigError
from vad.training import persistent

# Runs each job's CLI command in this process, saving the model after `fit` as <dump>.rank<RANK>.pt.
WORKER = '''
import json, os, sys
import torch
import vad.stages.pretrain, vad.stages.train
from vad.cli import main

rank = os.environ["RANK"]
for job in json.load(open(sys.argv[1])):
    module = getattr(vad.stages, job["stage"])
    original = module.fit

    def fit(model, *args, _fit=original, _dump=job["dump"], **kwargs):
        history = _fit(model, *args, **kwargs)
        torch.save({"model": model.state_dict(), "history": history}, f"{_dump}.rank{rank}.pt")
        return history

    module.fit = fit
    code = main(job["argv"])
    module.fit = original
    if code:
        sys.exit(code)
'''

# 52 training clips in batches of 17: shards of 8 and 9 clips, then a last batch of one clip, which both ranks
# take whole (Distributed.shard). Two pretraining epochs also cover the per-epoch checkpoint and barrier.
SECTIONS = {"pretrain": {"epochs": 2, "batch_size": 17}, "train": {"epochs": 1, "batch_size": 17}}
NETWORKS = {"batchnorm": {}, "no_batchnorm": {"appearance": False}}
STAGES = ("pretrain", "train")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, frame_store, make_params, make_document):
    """{network: root} with single/<stage>, ddp/<stage> (checkpoints) and ddp/<stage>.rank<r>.pt."""
    from vad.stages import init_clusters, pretrain, train

    assert len(ClipSource.from_split(FrameStore.open(frame_store), "train", 5)) % 17 == 1
    base = tmp_path_factory.mktemp("ddp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun sets for each of its processes
    jobs, roots = [], {}
    try:
        for network, model in NETWORKS.items():
            root = roots[network] = base / network
            params = make_params(model=model, **SECTIONS)
            (root / "params.yaml").parent.mkdir(parents=True)
            (root / "params.yaml").write_text(yaml.safe_dump(make_document(model=model, **SECTIONS)))
            pretrain.run(params, frame_store, root / "single" / "pretrain")
            init_clusters.run(params, frame_store, root / "single" / "pretrain", root / "init")
            train.run(params, frame_store, root / "init", root / "single" / "train")
            common = ["--params", str(root / "params.yaml"), "--frames", str(frame_store)]
            jobs += [{"stage": "pretrain", "dump": str(root / "ddp" / "pretrain"),
                      "argv": ["pretrain", *common, "--out", str(root / "ddp" / "pretrain")]},
                     {"stage": "train", "dump": str(root / "ddp" / "train"),
                      "argv": ["train", *common, "--init", str(root / "init"), "--out", str(root / "ddp" / "train")]}]
    finally:
        torch.set_num_threads(threads)
    (base / "worker.py").write_text(WORKER)
    (base / "jobs.json").write_text(json.dumps(jobs))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(base / "worker.py"), str(base / "jobs.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "2 processes (DDP)" in done.stderr
    return roots


def _rank(root, stage, rank):
    return torch.load(root / "ddp" / f"{stage}.rank{rank}.pt", weights_only=True)


def _losses(history):
    return [{k: v for k, v in record.items() if k.startswith("loss")} for record in history]


@pytest.mark.parametrize("network", NETWORKS)
def test_ranks_end_identical_and_rank0_writes_the_checkpoint(runs, network):
    for stage in STAGES:
        zero, one = _rank(runs[network], stage, 0), _rank(runs[network], stage, 1)
        checkpoint = load_checkpoint(runs[network] / "ddp" / stage / "checkpoint.pt")
        assert checkpoint["epoch"] == SECTIONS[stage]["epochs"] and zero["history"] == one["history"]
        for name, tensor in zero["model"].items():  # parameters, centers and BatchNorm statistics alike
            assert torch.equal(one["model"][name], tensor), (stage, name)
            assert torch.equal(checkpoint["model"][name], tensor), (stage, name)
        # history.json keeps the losses, not the timings (the same on every machine: DVC hashes it)
        written = json.loads((runs[network] / "ddp" / stage / "history.json").read_text())
        assert written == persistent(zero["history"])


def test_without_batchnorm_two_processes_train_as_one(runs, make_params, frame_store):
    # Without BatchNorm the only difference from one process is the order of float additions (gradients
    # summed over two shards and all-reduced): measured 1e-7 relative on the losses, hence rel=1e-5.
    # Weights: Adam divides each gradient by its own running magnitude, so an element whose true gradient is
    # at the level of float rounding (its sign set by the order of the additions, which depends on the
    # machine's kernels) moves by up to +-lr per step either way. Every element must stay within Adam's
    # bound of lr per step (times 2: two runs), and all but a few in 10,000 within 1e-5 + 1e-4 relative
    # (measured: every element within 2e-7).
    root = runs["no_batchnorm"]
    params = make_params(model=NETWORKS["no_batchnorm"], **SECTIONS)
    clips = len(ClipSource.from_split(FrameStore.open(frame_store), "train", 5))
    for stage in STAGES:
        section = getattr(params, stage)
        steps = section.epochs * -(-clips // section.batch_size)
        single, ddp = load_checkpoint(root / "single" / stage / "checkpoint.pt"), _rank(root, stage, 0)
        for a, b in zip(_losses(single["history"]), _losses(ddp["history"]), strict=True):
            assert b == pytest.approx(a, rel=1e-5), stage
        names = [n for n, t in single["model"].items() if t.is_floating_point()]
        ours = torch.cat([ddp["model"][n].flatten() for n in names])
        theirs = torch.cat([single["model"][n].flatten() for n in names])
        difference = (ours - theirs).abs()
        assert difference.max() <= 2 * section.lr * steps, stage
        outside = (difference > 1e-5 + 1e-4 * theirs.abs()).float().mean().item()
        assert outside <= 3e-4, (stage, outside)


def test_with_batchnorm_on_cpu_two_processes_train_approximately_as_one(runs):
    # SyncBatchNorm runs only on GPUs, so with gloo each rank normalises its shard (8 or 9 clips) with the
    # shard's own mean and variance instead of the global batch's. That changes the spatial stream's forward
    # pass slightly: the losses differ by 1e-5 (autoencoder) to 1e-3 (cluster loss, measured 8e-4) relative,
    # hence 5e-3. Weights are not compared element by element: the biases just before a BatchNorm have a true
    # gradient of zero, which Adam turns from rounding noise into steps of +-lr either way. Instead the two
    # updates of `train` (from the same initial model) must agree as wholes: measured 5% apart, bound 20%.
    # The running statistics are rank 0's shard's and are not compared with one process's at all.
    root = runs["batchnorm"]
    for stage in STAGES:
        single, ddp = load_checkpoint(root / "single" / stage / "checkpoint.pt"), _rank(root, stage, 0)
        for a, b in zip(_losses(single["history"]), _losses(ddp["history"]), strict=True):
            assert b == pytest.approx(a, rel=5e-3), stage
    init = load_checkpoint(root / "init" / "checkpoint.pt")["model"]
    single = load_checkpoint(root / "single" / "train" / "checkpoint.pt")["model"]
    ddp = _rank(root, "train", 0)["model"]
    names = [n for n, t in single.items() if t.is_floating_point() and "running_" not in n]

    def flat(state):
        return torch.cat([state[n].flatten() for n in names])

    assert (flat(ddp) - flat(single)).norm() < 0.2 * (flat(single) - flat(init)).norm()


@pytest.mark.parametrize("world,batch", [(2, 17), (3, 8), (4, 4), (3, 2), (2, 1)])
def test_shards_cover_the_global_batch_with_weights_summing_to_one(world, batch):
    indices = torch.arange(100, 100 + batch)
    shards = [Distributed(rank=r, world_size=world).shard(indices) for r in range(world)]
    assert sum(weight for _, weight in shards) == pytest.approx(1.0)
    if batch >= world:  # contiguous shares, sizes within one clip of each other
        assert torch.equal(torch.cat([s for s, _ in shards]), indices)
        assert max(len(s) for s, _ in shards) - min(len(s) for s, _ in shards) <= 1
        assert all(weight == len(s) / batch for s, weight in shards)
    else:  # fewer clips than ranks: every rank takes the whole batch
        assert all(torch.equal(s, indices) and weight == 1 / world for s, weight in shards)


def test_one_process_trains_on_the_whole_batch():
    indices = torch.arange(5)
    shard, weight = Distributed().shard(indices)
    assert torch.equal(shard, indices) and weight == 1.0


def test_global_batch_smaller_than_the_number_of_processes_is_refused(tmp_path):
    from vad.training import fit

    with pytest.raises(ConfigError, match="pretrain.batch_size 2 is the global batch, split over 4"):
        fit(torch.nn.Linear(1, 1), None, None, epochs=1, batch_size=2, seed=0, checkpoint_path=tmp_path / "c.pt",
            key="k", optimizers={}, name="pretrain", dist=Distributed(rank=0, world_size=4))


def test_torchrun_environment_is_read_and_a_pinned_gpu_refused(monkeypatch):
    from vad import distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_env() is None
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_env() == (3, 4, 1)
    assert distributed._rank_device("cpu", 1) == torch.device("cpu")
    with pytest.raises(ConfigError, match="cuda:1"):
        distributed._rank_device("cuda:1", 1)
