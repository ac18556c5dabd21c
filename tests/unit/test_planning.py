"""The planning rule of `vad fit`: given footage and step costs, its plan (vad.planning)."""

from __future__ import annotations

import inspect
import math
import re

import pytest

from vad import planning
from vad.config import parse_params
from vad.fit import Budget, pretrain_stop_rule, train_stop_rule
from vad.planning import Footage, Geometry, StepCosts, ladder, plan, train_epochs_left

# Footage like a fixed walkway camera: 16 gray videos of 160 frames at 10 frames/s, 12 labelled test videos.
WALKWAY = Footage(height=240, width=360, gray=True, fps=10.0, train_videos=16, train_frames=2550,
                  train_clips=2231, holdout_frames=255, test_frames=2010, labelled=True)


def cpu_costs(geometry: Geometry, ceiling: float = math.inf) -> StepCosts:
    """A 2-core CPU: 50 clips/s at 128x128 windows of width 8, cost growing with pixels and width^1.5."""
    scale = (geometry.window / 128) ** 2 * (geometry.width / 8) ** 1.5
    return StepCosts(pretrain_clip=scale / 50, train_clip=scale / 47, forward_window=scale / 150)


def gpu_costs(geometry: Geometry, ceiling: float = math.inf) -> StepCosts:
    """A GPU: the paper's network at 600 clips/s."""
    scale = (geometry.window / 256) ** 2 * (geometry.width / 32) ** 1.5
    return StepCosts(pretrain_clip=scale / 600, train_clip=scale / 560, forward_window=scale / 3000)


def test_walkway_on_a_cpu_hour_is_the_tiled_cpu_setting():
    chosen = plan(WALKWAY, cpu_costs, 3600)
    assert chosen.geometry == Geometry(256, 128, 8)
    assert chosen.channels == 1
    # configs/ped2-cpu.yaml, found by hand with the same rule on this kind of machine: 13 + 26, 4e-4
    assert 0 <= chosen.train_epochs - 2 * chosen.pretrain_epochs <= 2
    assert 30 <= chosen.epochs <= 70
    assert chosen.lr == pytest.approx(float(f"{1e-4 * 150 / chosen.epochs:.0e}"))
    assert chosen.clips_per_epoch is None
    assert chosen.pooling == "window"
    assert sum(chosen.expected_s.values()) <= 3600


def test_the_plan_is_a_valid_params_file_with_the_papers_method():
    chosen = plan(WALKWAY, cpu_costs, 3600)
    params = parse_params(chosen.params("camera-7"), "plan")
    assert params.model_name == "vad-camera-7"
    assert (params.data.image_size, params.data.tile, params.model.width) == ((256, 256), (128, 128), 8)
    method = (params.data.clip_len, params.model.clusters, params.model.alpha, params.train.lambda_r)
    assert method == (5, 32, 25.0, 0.1)
    assert params.pretrain.batch_size == params.train.batch_size == 8
    assert params.train.lr_milestones == [params.train.epochs]
    assert params.detect.fps == 10.0 and params.detect.map == "prediction"


def test_a_gpu_gets_the_papers_full_setting():
    chosen = plan(WALKWAY, gpu_costs, 3600, device="cuda")
    assert chosen.geometry == Geometry(256, None, 32)
    assert (chosen.pretrain_epochs, chosen.train_epochs) == (50, 100)
    assert (chosen.lr, chosen.center_lr) == (1e-4, 1e-5)
    assert chosen.fraction == 1.0


def test_probes_stop_at_the_first_rung_that_fits():
    probed = []

    def measure(geometry, ceiling):
        probed.append(geometry)
        return gpu_costs(geometry)

    plan(WALKWAY, measure, 3600, device="cuda")
    assert probed == [Geometry(256, None, 32)]
    probed.clear()
    plan(WALKWAY, lambda g, c: probed.append(g) or cpu_costs(g), 3600)
    assert probed == ladder(256)  # the CPU fits only the last rung


def test_the_ceiling_rules_out_a_rung_that_cannot_fit():
    ceilings = {}
    plan(WALKWAY, lambda g, c: ceilings.setdefault(g, c) and cpu_costs(g), 3600)
    rungs = ladder(256)
    assert math.isinf(ceilings[rungs[-1]])
    for rung in rungs[:-1]:  # each rung that did not fit cost more per clip than its ceiling
        assert cpu_costs(rung).pretrain_clip > ceilings[rung]


@pytest.mark.parametrize("costs", [cpu_costs, gpu_costs])
def test_more_budget_never_gives_fewer_epochs_at_a_geometry_nor_a_worse_geometry(costs):
    rank = {g: i for i, g in enumerate(ladder(256))}
    previous = None
    for minutes in (5, 10, 20, 40, 60, 90, 120, 240, 480, 960):
        chosen = plan(WALKWAY, costs, minutes * 60)
        now = (-rank[chosen.geometry], chosen.epochs * (chosen.clips_per_epoch or WALKWAY.train_clips))
        if previous is not None:
            assert now[0] >= previous[0]
            if now[0] == previous[0]:
                assert now[1] >= previous[1], f"{minutes} min"
        previous = now


def test_a_short_budget_samples_clips_and_respects_clip_counts():
    chosen = plan(WALKWAY, cpu_costs, 20 * 60)
    assert chosen.geometry == ladder(256)[-1]
    assert chosen.epochs >= math.ceil(planning.MIN_SHARE * 150)
    assert planning.BATCH <= chosen.clips_per_epoch < WALKWAY.train_clips
    assert chosen.sample_clips <= chosen.clips_per_epoch
    assert sum(chosen.expected_s.values()) <= 20 * 60


def test_small_footage_trains_with_clamped_counts_and_one_warning():
    few = Footage(height=96, width=128, gray=False, fps=None, train_videos=1, train_frames=60, train_clips=50,
                  holdout_frames=6, labelled=False)
    chosen = plan(few, cpu_costs, 10 * 60)
    assert chosen.geometry.side == 128 and chosen.channels == 3
    assert chosen.sample_clips <= 50 and (chosen.clips_per_epoch or 50) <= 50
    assert chosen.fps == 25.0
    assert len([w for w in chosen.warnings if "little footage" in w]) == 1
    assert any("frame rate" in w for w in chosen.warnings)
    assert "score" not in chosen.expected_s  # no labels: nothing to score or evaluate


def test_frame_side_never_upscales_more_than_twice():
    assert planning.frame_side(240, 360) == 256
    assert planning.frame_side(158, 238) == 256
    assert planning.frame_side(96, 128) == 128
    assert planning.frame_side(48, 64) == 64


def test_the_rule_names_no_dataset():
    source = inspect.getsource(planning).lower()
    for name in ("ped1", "ped2", "ucsd", "avenue", "shanghai", "synthetic", "walkway"):
        assert not re.search(rf"\b{name}\b", source), name
    document = plan(WALKWAY, cpu_costs, 3600).params("mine")
    assert document["data"]["dataset"] == "mine"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_slower_steps_cut_the_alternating_epochs():
    chosen = plan(WALKWAY, cpu_costs, 3600)
    planned_epoch = WALKWAY.train_clips * chosen.costs.train_clip
    clock = FakeClock()
    budget = Budget(3600, clock=clock)
    clock.now += chosen.expected_s["pretrain"] + chosen.expected_s["init_clusters"]  # on plan so far
    assert train_epochs_left(chosen, budget.left(), planned_epoch) == chosen.train_epochs
    assert train_epochs_left(chosen, budget.left(), 2 * planned_epoch) < chosen.train_epochs
    clock.now += 3 * chosen.expected_s["pretrain"]  # pretraining took four times as long
    assert 1 <= train_epochs_left(chosen, budget.left(), planned_epoch) < chosen.train_epochs // 2


def test_the_stop_rules_hold_the_budget_on_a_fake_clock():
    clock = FakeClock()
    budget = Budget(600, spent_before=100, clock=clock)  # 100 s went to an attempt that was killed
    train_stop = train_stop_rule(budget, reserve_s=50)
    assert not train_stop({"epoch": 1, "seconds": 400})  # 500 left, 50 reserved: 400 more fits
    clock.now += 100
    assert train_stop({"epoch": 2, "seconds": 400})  # 400 left
    pretrain_stop = pretrain_stop_rule(Budget(1000, clock=clock), reserve_s=100, ratio=1.0)
    assert not pretrain_stop({"epoch": 1, "seconds": 100})  # next epoch + 4 alternating: 500 of 900
    assert pretrain_stop({"epoch": 1, "seconds": 200})  # 1000 of 900


@pytest.mark.parametrize("minutes", [15, 20, 30, 60, 120])
def test_a_plan_spends_its_budget_and_no_more(minutes):
    chosen = plan(WALKWAY, cpu_costs, minutes * 60)
    expected = sum(chosen.expected_s.values())
    # a tenth of the training time to spare, whole epochs; never over
    assert 0.85 * minutes * 60 <= expected <= minutes * 60
