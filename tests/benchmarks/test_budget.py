"""How the GPU check fits the paper's schedule into its time budget (benchmarks/budget.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from budget import Costs, Plan, plan, scale_milestones, train_epochs_left  # noqa: E402

# 1 ms per pretraining clip, 1.5 ms per alternating one, 0.1 s per checkpoint, 3 s per stage, and k-means on
# the latents of at most 2,000 clips (one epoch's at most), 2.5 ms each: 5 s at the full schedule.
COSTS = Costs(pretrain_clip=1e-3, train_clip=1.5e-3, epoch=0.1, stage=3.0, init_clip=2.5e-3, init_clips=2000)
PED2 = {"pretrain_epochs": 50, "train_epochs": 100, "clips": 2486, "batch_size": 8}


def test_the_full_schedule_when_it_fits():
    needed = COSTS.seconds(50, 100, 2486)
    assert needed == pytest.approx(2 * 3 + 5 + 50 * (2.486 + 0.1) + 100 * (3.729 + 0.1))
    assert plan(COSTS, needed + 1, **PED2) == Plan(50, 100, 2486, 1.0)


def test_a_short_budget_cuts_both_stages_alike_and_fits():
    needed = COSTS.seconds(50, 100, 2486)
    half = plan(COSTS, 11 + (needed - 11) / 2, **PED2)
    assert (half.pretrain_epochs, half.train_epochs, half.clips_per_epoch) == (25, 50, 2486)
    assert half.fraction == pytest.approx(0.5)
    for seconds in (30.0, 77.7, 200.0, 400.0):
        cut = plan(COSTS, seconds, **PED2)
        assert COSTS.seconds(cut.pretrain_epochs, cut.train_epochs, cut.clips_per_epoch) <= seconds
        assert cut.train_epochs == pytest.approx(2 * cut.pretrain_epochs, abs=1)


@pytest.mark.parametrize("seconds", [12.3456, 15.001, 16.987])  # k-means sampling fewer clips, or all 2,000
def test_fewer_clips_per_epoch_when_one_epoch_of_each_does_not_fit(seconds):
    # one whole epoch of each stage and the full k-means need 2 x 3 + 6.4 + 5 = 17.4 s: epochs are cut to
    # fewer clips, and k-means samples no more than one epoch's
    tiny = plan(COSTS, seconds, **PED2)
    assert (tiny.pretrain_epochs, tiny.train_epochs) == (1, 1)
    assert 8 <= tiny.clips_per_epoch < 2486
    assert COSTS.seconds(1, 1, tiny.clips_per_epoch) <= seconds
    assert COSTS.seconds(1, 1, tiny.clips_per_epoch + 1) > seconds
    assert tiny.fraction == pytest.approx(2 * tiny.clips_per_epoch / (150 * 2486))
    assert plan(COSTS, 1.0, **PED2).clips_per_epoch == 8  # no time at all: one batch, the least there is


def test_init_clusters_samples_at_most_one_epoch_and_its_cap():
    assert COSTS.init(100) == pytest.approx(0.25) and COSTS.init(2486) == COSTS.init(2000) == pytest.approx(5.0)


def test_alternating_epochs_are_planned_again_from_the_time_left():
    planned = plan(COSTS, 300.0, **PED2)
    assert train_epochs_left(COSTS, 1e6, planned) == planned.train_epochs  # never more than planned
    epoch = 2486 * 1.5e-3 + 0.1
    assert train_epochs_left(COSTS, 3.0 + 10.5 * epoch, planned) == 10
    assert train_epochs_left(COSTS, 0.0, planned) == 1


def test_milestones_keep_their_share_of_the_schedule():
    assert scale_milestones([40, 80], 100, 50) == [20, 40]
    assert scale_milestones([100], 100, 10) == [10]
    assert scale_milestones([1, 2], 100, 10) == [1]
