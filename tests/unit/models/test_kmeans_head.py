import copy

import torch

from vad.models.kmeans_head import DeepKMeansHead


def _direct(head: DeepKMeansHead, r: torch.Tensor) -> torch.Tensor:
    # D(r) of Eq. 10-11 written out: every difference r - c_k.
    distance = ((r.permute(0, 2, 3, 1).unsqueeze(-2) - head.centers) ** 2).sum(-1).sqrt()
    return (torch.softmax(-head.alpha * distance, dim=-1) * distance.pow(2)).sum(-1)


def test_cluster_distance_by_matrix_products_is_as_accurate_as_the_differences():
    # Against the differences in float64, D(r) and its gradients are as close as the differences in float32.
    torch.manual_seed(0)
    head = DeepKMeansHead(clusters=6, dim=16, alpha=25.0)
    with torch.no_grad():
        head.centers.copy_(torch.randn(6, 16) * 0.3)
    r = torch.randn(3, 16, 4, 5) * 0.3
    exact = copy.deepcopy(head).double()

    def value_and_grads(distance, model, x):
        x = x.clone().requires_grad_()
        out = distance(model, x)
        return [out, *torch.autograd.grad(out.square().sum(), (x, model.centers))]

    reference = value_and_grads(_direct, exact, r.double())
    fast = value_and_grads(DeepKMeansHead.__call__, head, r)
    direct = value_and_grads(_direct, head, r)
    assert fast[0].shape == (3, 4, 5)
    for f, d, ref in zip(fast, direct, reference, strict=True):
        fast_error, direct_error = (f.double() - ref).abs().max(), (d.double() - ref).abs().max()
        assert fast_error <= 2 * direct_error + 1e-9 * ref.abs().max()


def test_a_vector_on_a_center_has_zero_distance_and_finite_gradients():
    head = DeepKMeansHead(clusters=2, dim=3, alpha=25.0)
    with torch.no_grad():
        head.centers.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    r = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1).requires_grad_()
    distance = head(r)
    assert distance.item() < 1e-5
    distance.sum().backward()
    assert torch.isfinite(r.grad).all() and torch.isfinite(head.centers.grad).all()


def test_euclidean_distance_is_the_soft_assigned_distance_of_the_authors_code():
    # arch/module/cluster.py: cdist to the centers, softmax(-alpha d) over them, the distance itself weighted
    # (the paper's Eq. 10 squares it: the default). Same assignment weights, one power less.
    torch.manual_seed(1)
    squared, euclidean = DeepKMeansHead(5, 8, 25.0), DeepKMeansHead(5, 8, 25.0, "euclidean")
    with torch.no_grad():
        squared.centers.copy_(torch.randn(5, 8) * 0.3)
        euclidean.centers.copy_(squared.centers)
    r = torch.randn(2, 8, 3, 4) * 0.3
    d = torch.cdist(r.permute(0, 2, 3, 1).reshape(-1, 8).double(), squared.centers.double())
    w = torch.softmax(-25.0 * d, dim=-1)
    torch.testing.assert_close(euclidean(r).double().flatten(), (w * d).sum(-1), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(squared(r).double().flatten(), (w * d * d).sum(-1), rtol=1e-5, atol=1e-7)
    # the map differs: far places weigh less against near ones without the square
    assert not torch.allclose(euclidean(r), squared(r))


def test_unknown_distance_is_refused():
    import pytest

    with pytest.raises(ValueError, match="squared or euclidean"):
        DeepKMeansHead(2, 3, 25.0, "cosine")


def test_the_distance_can_be_switched_after_training_without_touching_the_centers():
    torch.manual_seed(1)
    head = DeepKMeansHead(clusters=4, dim=8, alpha=25.0)
    with torch.no_grad():
        head.centers.copy_(torch.randn(4, 8))
    r = torch.randn(2, 8, 3, 3)
    distance = head._distances(r)
    weights = torch.softmax(-head.alpha * distance, dim=-1)
    centers = head.centers.detach().clone()
    assert torch.equal(head(r), (weights * distance.square()).sum(-1))
    head.distance = "euclidean"
    assert head.distance == "euclidean" and torch.equal(head.centers, centers)
    torch.testing.assert_close(head(r), (weights * distance).sum(-1))
    head.distance = "squared"
    torch.testing.assert_close(head(r), (weights * distance.square()).sum(-1))


def test_mean_reduction_is_the_authors_loss_k_times_smaller_than_eq_10():
    # arch/model/PredRes_Model.py: loss_cluster = torch.mean(rep_dist * softassign, [1, 2, 3]), a mean over
    # the K centers too, where Eq. 10 sums over them: with `mean`, L_cluster is the authors' value.
    torch.manual_seed(2)
    summed, averaged = DeepKMeansHead(6, 8, 25.0, "euclidean"), DeepKMeansHead(6, 8, 25.0, "euclidean", "mean")
    with torch.no_grad():
        summed.centers.copy_(torch.randn(6, 8) * 0.3)
        averaged.centers.copy_(summed.centers)
    r = torch.nn.functional.normalize(torch.randn(2, 8, 3, 4), dim=1)
    d = torch.cdist(r.permute(0, 2, 3, 1).reshape(2, -1, 8).double(), summed.centers.double()[None])
    authors_loss = torch.mean(d * torch.softmax(-25.0 * d, dim=-1), dim=(1, 2))  # per clip, as theirs
    torch.testing.assert_close(averaged(r).double().mean(dim=(1, 2)), authors_loss, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(averaged(r) * 6, summed(r), rtol=1e-6, atol=1e-8)


def test_unknown_reduction_is_refused():
    import pytest

    with pytest.raises(ValueError, match="sum or mean"):
        DeepKMeansHead(2, 3, 25.0, "squared", "max")
