"""The fast path (`perf`: bf16 autocast, channels_last, fused Adam, compile) trains as the plain path does.

Only what runs on a CPU is exercised here: channels_last, fused Adam (torch's CPU kernel), bf16 autocast on
the CPU, and host-staged batches. The CUDA-only parts (auto switches on a GPU, SyncBatchNorm, pinned
copies, cudnn.benchmark) are checked for their decisions, not run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from vad.checkpoint import load_checkpoint
from vad.config import Amp, PerfParams, parse_params
from vad.data.clips import ClipSource, fits_on_device
from vad.data.store import FrameStore
from vad.errors import ConfigError
from vad.models import build_model
from vad.models.losses import autoencoder_losses
from vad.training import Runtime, resolve_runtime, seed_everything

CPU = torch.device("cpu")
FAST_FLOAT32 = {"amp": "off", "channels_last": True, "fused_adam": True}


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny convolutions: a second thread only adds contention on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_auto_switches_keep_the_plain_path_on_cpu():
    runtime = resolve_runtime(CPU, PerfParams())
    assert (runtime.amp_dtype, runtime.channels_last, runtime.fused_adam, runtime.compile) == (None, False, False,
                                                                                               False)


def test_auto_switches_turn_the_fast_path_on_for_cuda(monkeypatch):
    from vad import training

    gpu = torch.device("cuda", 0)  # a device object only: nothing runs on it
    monkeypatch.setattr(training, "_bf16_native", lambda device: True)
    runtime = resolve_runtime(gpu, PerfParams())
    assert (runtime.amp_dtype, runtime.channels_last, runtime.fused_adam) == (torch.bfloat16, True, True)
    assert resolve_runtime(gpu, PerfParams(amp="off", channels_last=False)).amp_dtype is None

    monkeypatch.setattr(training, "_bf16_native", lambda device: False)
    monkeypatch.setattr(training, "device_name", lambda device: "Tesla T4")
    assert resolve_runtime(gpu, PerfParams()).amp_dtype is None
    with pytest.raises(ConfigError, match="perf.amp is bf16, but Tesla T4"):
        resolve_runtime(gpu, PerfParams(amp="bf16"))


def test_perf_section_reads_yaml_off_and_names_bad_keys():
    params = parse_params(yaml.safe_load("perf: {amp: off, channels_last: true, fused_adam: auto}"))
    assert params.perf.amp == Amp.OFF and params.perf.channels_last is True and params.perf.fused_adam == "auto"
    with pytest.raises(ConfigError, match=r"perf\.channels_last"):
        parse_params({"perf": {"channels_last": "sometimes"}})
    with pytest.raises(ConfigError, match=r"perf\.amp"):
        parse_params({"perf": {"amp": "fp8"}})


def test_autocast_forward_hands_back_float32_outputs(make_params, frame_store):
    params = make_params()
    model = build_model(params.model, params.data)
    forward = Runtime(device=CPU, amp_dtype=torch.bfloat16).prepare(model)
    clips = ClipSource.from_split(FrameStore.open(frame_store), "train", params.data.clip_len)
    outputs = forward(clips.batch(torch.arange(4)))
    for name in ("f0", "d", "f0_hat", "d_hat", "target", "prediction", "r"):
        assert getattr(outputs, name).dtype == torch.float32, name


def test_channels_last_and_fused_adam_give_the_plain_losses(make_params, frame_store, pretrain_steps):
    params = make_params()
    plain, _ = pretrain_steps(params, frame_store, {"amp": "off"})
    fast, model = pretrain_steps(params, frame_store, FAST_FLOAT32)
    weight = model.spatial.encoder.blocks[0].conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    # float32 throughout; only the convolution algorithms (NHWC) and the Adam kernel differ: rounding only.
    np.testing.assert_allclose(fast, plain, rtol=1e-5)


def test_bf16_autocast_stays_close_to_float32(make_params, frame_store, pretrain_steps):
    params = make_params()
    plain, _ = pretrain_steps(params, frame_store, {"amp": "off"})
    bf16, model = pretrain_steps(params, frame_store, {"amp": "bf16"})
    # bfloat16 keeps 8 significant bits (relative rounding 2**-9 = 2e-3 per operation); convolutions accumulate
    # in float32 and the losses are computed in float32 from float32 casts of the outputs, so the losses of a
    # few steps agree to a few 1e-3 (measured: up to 2e-3). Weights stay float32 (autocast, not .half()).
    np.testing.assert_allclose(bf16, plain, rtol=1e-2)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_stages_on_the_fast_path_log_the_plain_history(tmp_path, make_params, frame_store):
    from vad.stages import init_clusters, pretrain, train

    sections = {"pretrain": {"epochs": 2}, "train": {"epochs": 1}}
    plain = make_params(**sections)
    fast = make_params(perf=FAST_FLOAT32, **sections)
    pretrain.run(plain, frame_store, tmp_path / "pretrain")
    init_clusters.run(plain, frame_store, tmp_path / "pretrain", tmp_path / "init")
    for label, params in (("plain", plain), ("fast", fast)):
        pretrain.run(params, frame_store, tmp_path / label / "pretrain")
        train.run(params, frame_store, tmp_path / "init", tmp_path / label / "train")
    for stage in ("pretrain", "train"):
        a = load_checkpoint(tmp_path / "plain" / stage / "checkpoint.pt")
        b = load_checkpoint(tmp_path / "fast" / stage / "checkpoint.pt")
        assert a["key"] == b["key"]  # perf is not part of the run: a run may resume with other switches
        for ha, hb in zip(a["history"], b["history"], strict=True):
            for name in (k for k in ha if k.startswith("loss")):
                assert hb[name] == pytest.approx(ha[name], rel=1e-5), (stage, name)
        for name, tensor in b["model"].items():
            # stored float32 and in the usual layout, whatever the memory format used in training
            assert tensor.dtype == a["model"][name].dtype and tensor.is_contiguous(), name


def test_host_staged_batches_equal_device_resident_ones(make_params, frame_store):
    params = make_params()
    store = FrameStore.open(frame_store)
    resident = ClipSource.from_split(store, "train", params.data.clip_len, resident=True)
    staged = ClipSource.from_split(store, "train", params.data.clip_len, resident=False)
    indices = torch.tensor([0, 5, len(resident) - 1, 3])
    assert torch.equal(staged.batch(indices), resident.batch(indices))


def test_loader_read_batches_of_the_memory_mapped_store_equal_resident_ones(make_params, frame_store):
    params = make_params()
    store = FrameStore.open(frame_store)
    resident = ClipSource.from_split(store, "train", params.data.clip_len, resident=True)
    staged = ClipSource.from_split(store, "train", params.data.clip_len, resident=False)
    assert staged.frames is None  # nothing loaded up front: read from the .npy memory maps
    order = torch.randperm(len(resident), generator=torch.Generator().manual_seed(0))
    index_batches = list(order.split(7))
    got = list(staged.iter_batches(index_batches))  # through DataLoader worker processes
    assert len(got) == len(index_batches)
    for indices, batch in zip(index_batches, got, strict=True):
        assert torch.equal(batch, resident.batch(indices))


def test_training_from_the_memory_mapped_store_gives_the_resident_losses(make_params, frame_store, tmp_path):
    from vad.training import fit

    params = make_params()
    store = FrameStore.open(frame_store)
    histories = {}
    for resident in (True, False):
        seed_everything(params.seed)
        model = build_model(params.model, params.data)
        optimizer = torch.optim.Adam(model.autoencoder_parameters(), lr=1e-3)

        def step(batch, loss_scale, model=model, optimizer=optimizer):
            total = sum(autoencoder_losses(model(batch), 1.0).values())
            optimizer.zero_grad(set_to_none=True)
            (total * loss_scale).backward()
            optimizer.step()
            return {"loss": total.detach()}

        clips = ClipSource.from_split(store, "train", params.data.clip_len, resident=resident)
        histories[resident] = fit(model, clips, step, epochs=2, batch_size=8, seed=0, key="k",
                                  checkpoint_path=tmp_path / f"{resident}.pt", optimizers={"ae": optimizer})
    assert [h["loss"] for h in histories[False]] == [h["loss"] for h in histories[True]]


def test_frames_stay_on_the_gpu_only_when_they_take_at_most_half_its_free_memory():
    assert fits_on_device(4 * 2**30, 8 * 2**30)
    assert not fits_on_device(4 * 2**30 + 1, 8 * 2**30)


@pytest.mark.slow
def test_compiled_network_gives_the_plain_losses(make_params, frame_store, pretrain_steps):
    params = make_params()
    plain, _ = pretrain_steps(params, frame_store, {"amp": "off"}, steps=2)
    compiled, _ = pretrain_steps(params, frame_store, {"amp": "off", "compile": True}, steps=2)
    np.testing.assert_allclose(compiled, plain, rtol=1e-4)


def test_resumed_adam_moments_take_the_layout_of_their_parameters():
    from vad.training import match_param_layouts

    conv = torch.nn.Conv2d(4, 8, 3)
    saved = torch.optim.Adam(conv.parameters())
    conv(torch.rand(2, 4, 6, 6)).sum().backward()
    saved.step()  # moments in the usual (NCHW) layout
    conv.to(memory_format=torch.channels_last)  # resumed with perf.channels_last on
    resumed = torch.optim.Adam(conv.parameters(), fused=True)
    resumed.load_state_dict(saved.state_dict())
    match_param_layouts(resumed)
    moments = resumed.state[conv.weight]
    assert moments["exp_avg"].stride() == moments["exp_avg_sq"].stride() == conv.weight.stride()
    assert torch.equal(moments["exp_avg"], saved.state[conv.weight]["exp_avg"])
