"""train.continue_adam: the autoencoders' Adam carried from pretraining into alternating training."""

import pytest
import torch

from vad.checkpoint import CHECKPOINT, load_checkpoint
from vad.errors import DataLayoutError
from vad.stages import train
from vad.stages.train import continue_adam


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))


def _step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(seed))
    optimizer.zero_grad()
    net(x).pow(2).mean().backward()
    optimizer.step()


def test_the_continued_adam_steps_as_the_pretraining_one_would_at_the_new_rate():
    pretrained, later = _net(), _net()
    first = torch.optim.Adam(pretrained.parameters(), lr=1e-2)
    for seed in range(5):
        _step(pretrained, first, seed)
    later.load_state_dict(pretrained.state_dict())
    init = {"pretrain_adam": first.state_dict()}

    continued = torch.optim.Adam(later.parameters(), lr=3e-3)
    continue_adam(continued, init, "init/checkpoint.pt", lr=3e-3)
    fresh_net = _net()
    fresh_net.load_state_dict(pretrained.state_dict())
    fresh = torch.optim.Adam(fresh_net.parameters(), lr=3e-3)
    for group in first.param_groups:  # the reference: the pretraining optimizer itself, its rate changed
        group["lr"] = 3e-3
    for seed in (10, 11):
        _step(pretrained, first, seed)
        _step(later, continued, seed)
        _step(fresh_net, fresh, seed)

    assert continued.state_dict()["state"][0]["step"].item() == 7  # 5 pretraining steps + 2
    for ours, reference in zip(later.parameters(), pretrained.parameters(), strict=True):
        assert torch.equal(ours, reference)  # the same operations on the same values: bit for bit
    # and a fresh Adam moves the weights elsewhere, so the test can tell the two apart
    assert not all(torch.equal(a, b) for a, b in zip(fresh_net.parameters(), pretrained.parameters(), strict=True))


def test_the_milestones_count_from_the_alternating_rate():
    net = _net()
    first = torch.optim.Adam(net.parameters(), lr=1e-2)
    torch.optim.lr_scheduler.MultiStepLR(first, [1], 0.5)  # a schedule of pretraining's own, if it had one
    _step(net, first, 0)
    continued = torch.optim.Adam(net.parameters(), lr=4e-3)
    continue_adam(continued, {"pretrain_adam": first.state_dict()}, "init/checkpoint.pt", lr=4e-3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(continued, [1], 0.1)
    assert continued.param_groups[0]["lr"] == 4e-3
    continued.step()
    scheduler.step()
    assert continued.param_groups[0]["lr"] == pytest.approx(4e-4, rel=1e-12)


def test_an_init_checkpoint_without_optimizer_state_is_refused_by_name():
    net = _net()
    with pytest.raises(DataLayoutError, match=r"old/init/checkpoint.pt carries no pretraining optimizer state"):
        continue_adam(torch.optim.Adam(net.parameters(), lr=1e-3), {"model": {}}, "old/init/checkpoint.pt", 1e-3)


def test_init_clusters_passes_pretraining_adam_on_and_train_continues_it(params, trained, tmp_path):
    pretrain_adam = load_checkpoint(trained["pretrain"] / CHECKPOINT)["optimizers"]["ae"]
    init = load_checkpoint(trained["init"] / CHECKPOINT)
    assert init["pretrain_adam"]["state"].keys() == pretrain_adam["state"].keys()
    assert all(torch.equal(init["pretrain_adam"]["state"][i]["exp_avg_sq"], pretrain_adam["state"][i]["exp_avg_sq"])
               for i in pretrain_adam["state"])

    continued = params.model_copy(update={"train": params.train.model_copy(update={"continue_adam": True})})
    train.run(continued, trained["frames"], trained["init"], tmp_path / "continued")
    steps = {name: load_checkpoint(path / CHECKPOINT)["optimizers"]["ae"]["state"][0]["step"].item()
             for name, path in (("pretrain", trained["pretrain"]), ("fresh", trained["train"]),
                                ("continued", tmp_path / "continued"))}
    assert steps["continued"] == steps["pretrain"] + steps["fresh"]
