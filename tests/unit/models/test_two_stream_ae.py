import dataclasses

import pytest
import torch
import torch.nn.functional as F

from vad.config import DataParams, ModelParams
from vad.errors import ConfigError
from vad.models import build_model, load_weights
from vad.models.blocks import VarianceAttention
from vad.models.kmeans_head import DeepKMeansHead
from vad.models.losses import autoencoder_losses, gradient_loss


@pytest.mark.parametrize("size,channels", [(32, 1), (64, 3)])
def test_output_shapes_follow_image_size(size, channels):
    torch.manual_seed(0)
    model = build_model(ModelParams(width=4, clusters=3), DataParams(image_size=size, channels=channels))
    out = model(torch.rand(2, 5, channels, size, size))
    assert out.f0_hat.shape == out.d_hat.shape == out.prediction.shape == (2, channels, size, size)
    assert out.r.shape == (2, 2 * 8 * 4, size // 8, size // 8)  # z_a and z_m, 8w channels each
    assert torch.allclose(out.r.norm(dim=1), torch.ones(2, size // 8, size // 8), atol=1e-5)
    assert model.kmeans(out.r).shape == (2, size // 8, size // 8)


def test_non_square_images_are_supported():
    model = build_model(ModelParams(width=2, clusters=2), DataParams(image_size=(32, 48), channels=1))
    out = model(torch.rand(1, 5, 1, 32, 48))
    assert out.prediction.shape == (1, 1, 32, 48) and out.r.shape[-2:] == (4, 6)


def test_latents_are_l1_normalised_over_channels():
    model = build_model(ModelParams(width=2, clusters=2), DataParams(image_size=32, channels=1))
    z, _ = model.motion.encoder(torch.rand(2, 4, 32, 32))
    assert torch.allclose(z.abs().sum(dim=1), torch.ones(2, 4, 4), atol=1e-5)


def test_prediction_is_reconstructed_first_frame_plus_predicted_difference():
    model = build_model(ModelParams(width=2, clusters=2), DataParams(image_size=32, channels=1))
    clip = torch.rand(2, 5, 1, 32, 32)
    out = model(clip)
    assert torch.allclose(out.prediction, out.f0_hat + out.d_hat)
    assert torch.equal(out.d, clip[:, 4] - clip[:, 0]) and torch.equal(out.target, clip[:, 4])


@pytest.mark.parametrize("switch", ["appearance", "motion"])
def test_single_stream_ablations(switch):
    model = build_model(ModelParams(width=2, clusters=2, **{switch: False}), DataParams(image_size=32, channels=1))
    clip = torch.rand(2, 5, 1, 32, 32)
    out = model(clip)
    assert out.r.shape[1] == 8 * 2
    if switch == "appearance":  # motion only: f0 itself plus the predicted difference
        assert model.spatial is None and torch.allclose(out.prediction, clip[:, 0] + out.d_hat)
    else:  # appearance only: the score compares f0 with its reconstruction
        assert model.motion is None and torch.equal(out.target, clip[:, 0])
    sum(autoencoder_losses(out, 1.0).values()).backward()


def test_attention_switch_removes_the_modules():
    with_attention = build_model(ModelParams(width=2), DataParams(image_size=32, channels=1))
    without = build_model(ModelParams(width=2, attention=False), DataParams(image_size=32, channels=1))
    assert sum(isinstance(m, VarianceAttention) for m in with_attention.modules()) == 3
    assert not any(isinstance(m, VarianceAttention) for m in without.modules())


@pytest.mark.parametrize("decoder,bypasses_latent", [("authors", False), ("wide", True)])
def test_motion_prediction_passes_through_z_m_only_with_the_authors_decoder(decoder, bypasses_latent):
    """The authors' decoder starts from z_m; `wide` also reads the last block's output at 1/8 resolution."""
    torch.manual_seed(0)
    model = build_model(ModelParams(width=4, clusters=2, motion_decoder=decoder),
                        DataParams(image_size=32, channels=1)).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    encode = model.motion.encoder.forward
    d_hat, _ = model.motion(frames)

    def last_skip_replaced(x):
        z, skips = encode(x)
        return z, [*skips[:-1], torch.randn_like(skips[-1])]

    model.motion.encoder.forward = last_skip_replaced
    d_changed, _ = model.motion(frames)
    assert torch.equal(d_hat, d_changed) is not bypasses_latent


def test_backward_reaches_every_autoencoder_parameter():
    model = build_model(ModelParams(width=2, clusters=2), DataParams(image_size=32, channels=1))
    out = model(torch.rand(2, 5, 1, 32, 32))
    (sum(autoencoder_losses(out, 1.0).values()) + model.kmeans(out.r).mean()).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_variance_attention_is_a_softmax_over_positions_and_scales_by_exp():
    torch.manual_seed(0)
    attention = VarianceAttention(6, grid=(4, 4))
    x = torch.randn(2, 6, 16, 16)
    a = attention.weights(x)
    assert a.shape == (2, 1, 4, 4)
    assert torch.allclose(a.sum(dim=(1, 2, 3)), torch.ones(2)) and (a > 0).all()
    # a recomputed by hand from the definition (Eq. 7-9)
    p = F.avg_pool2d(attention.embed(x), 4)
    v = ((p - p.mean(dim=1, keepdim=True)) ** 2).sum(dim=1).flatten(1)
    assert torch.allclose(a.flatten(1), torch.softmax(v, dim=1), atol=1e-6)
    expected = torch.exp(a.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)) * x
    assert torch.allclose(attention(x), expected, atol=1e-6)


def test_cluster_distance_matches_a_hand_computed_two_center_example():
    head = DeepKMeansHead(clusters=2, dim=2, alpha=1.0)
    with torch.no_grad():
        head.centers.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    r = torch.tensor([0.0, 0.0]).reshape(1, 2, 1, 1)  # distances 0 and 5
    # weights softmax(-[0, 5]) = [1, e^-5] / (1 + e^-5); D = w1 * 0 + w2 * 25
    w2 = torch.exp(torch.tensor(-5.0)) / (1 + torch.exp(torch.tensor(-5.0)))
    assert torch.allclose(head(r), (w2 * 25).reshape(1, 1, 1), atol=1e-5)
    assignments = head.assignments(torch.rand(3, 2, 2, 2))
    assert assignments.shape == (3, 2, 2, 2) and torch.allclose(assignments.sum(dim=1), torch.ones(3, 2, 2))


def test_gradient_loss_matches_a_hand_example():
    pred = torch.tensor([[[[0.0, 1.0], [0.0, 3.0]]]])  # |dx| = [1, 3], |dy| = [0, 2]
    target = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]])  # |dx| = [0, 0], |dy| = [1, 1]
    # x term: mean(|1-0|, |3-0|) = 2; y term: mean(|0-1|, |2-1|) = 1
    assert gradient_loss(pred, target).item() == pytest.approx(3.0)
    assert gradient_loss(target, target).item() == 0.0


def _textured_clip_with_a_moving_square() -> torch.Tensor:
    """(1, 5, 1, 32, 32): a fixed textured background and a bright square moving one pixel per frame."""
    torch.manual_seed(0)
    background = 0.5 + 0.1 * torch.rand(32, 32)
    frames = []
    for t in range(5):
        frame = background.clone()
        frame[10:16, 8 + t : 14 + t] = 0.9
        frames.append(frame)
    return torch.stack(frames)[None, :, None]


def test_motion_loss_compares_the_gradients_of_the_predicted_frame_with_f4():
    # The authors' code (and the default): MSE(d_hat, d) + w_grad * gradient_loss(f0 + d_hat, f4).
    model = build_model(ModelParams(width=2, clusters=2), DataParams(image_size=32, channels=1))
    out = model(_textured_clip_with_a_moving_square())
    f0, f4 = out.f0, out.f0 + out.d
    expected = F.mse_loss(out.d_hat, out.d) + 0.01 * gradient_loss(f0 + out.d_hat, f4)
    assert torch.allclose(autoencoder_losses(out, 0.01)["motion"], expected)
    literal = F.mse_loss(out.d_hat, out.d) + gradient_loss(out.d_hat, out.d)  # Eq. 6 read on differences
    assert torch.allclose(autoencoder_losses(out, 1.0, "difference")["motion"], literal)
    assert ModelParams().gradient_on == "frame" and ModelParams().w_grad == 0.01


def test_default_motion_loss_prefers_a_noisy_true_motion_to_none():
    # A prediction of the true motion with a little pixel noise (its squared error 14x below that of
    # d_hat = 0) must cost less than predicting no motion. Eq. 6 read on differences with means (the old
    # default) ranks them the other way round: noise has gradients everywhere, a frame difference only at the
    # moving edges, so its gradient term rewards a flat d_hat. On Ped2 that left the motion stream fitting
    # worse than d_hat = 0.
    out = build_model(ModelParams(width=2, clusters=2), DataParams(image_size=32, channels=1))(
        _textured_clip_with_a_moving_square())
    noisy = out.d + 0.02 * torch.randn(out.d.shape, generator=torch.Generator().manual_seed(0))
    none = torch.zeros_like(out.d)
    assert F.mse_loss(noisy, out.d) < F.mse_loss(none, out.d) / 10

    def motion_loss(d_hat, *args):
        return autoencoder_losses(dataclasses.replace(out, d_hat=d_hat), *args)["motion"].item()

    assert motion_loss(noisy, ModelParams().w_grad, ModelParams().gradient_on) < motion_loss(
        none, ModelParams().w_grad, ModelParams().gradient_on)
    assert motion_loss(noisy, 1.0, "difference") > motion_loss(none, 1.0, "difference")


def test_weights_of_another_network_are_a_config_error_naming_the_checkpoint():
    data = DataParams(image_size=32, channels=1)
    wide = build_model(ModelParams(width=4, motion_decoder="wide"), data).state_dict()
    model = build_model(ModelParams(width=4), data)
    with pytest.raises(ConfigError, match=r"old/checkpoint.pt holds a network built with other .*motion_decoder"):
        load_weights(model, wide, "old/checkpoint.pt")
    load_weights(model, build_model(ModelParams(width=4), data).state_dict(), "new/checkpoint.pt")


def test_the_cluster_reduction_reaches_the_head():
    data = DataParams(image_size=(32, 48), channels=1)
    assert build_model(ModelParams(width=2, clusters=2), data).kmeans.reduction == "sum"  # Eq. 10
    assert build_model(ModelParams(width=2, clusters=2, cluster_reduction="mean"), data).kmeans.reduction == "mean"
