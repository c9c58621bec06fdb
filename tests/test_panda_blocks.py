"""PANDA building blocks: policy, Gumbel-top-B and its relaxation, unrolled inner learner."""

import math

import pytest
import torch
from torch import nn

from fairal.metrics import soft_demographic_parity
from fairal.panda import (
    PolicyFileError,
    SetTransformerPolicy,
    gumbel_top_b,
    head_logits,
    head_loss,
    init_head,
    load_policy,
    relaxed_top_b,
    sample_gumbel,
    save_policy,
    straight_through_top_b,
    train_head,
)
from fairal.trainers.models import FittedModel, LogisticRegression


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _toy(n=40, k=5, seed=0, dtype=torch.float64):
    g = _gen(seed)
    x = torch.randn(n, k, generator=g, dtype=dtype)
    y = (x[:, 0] + 0.5 * torch.randn(n, generator=g, dtype=dtype) > 0).to(dtype)
    return x, y, g


# --------------------------------------------------------------------------- #
# Policy
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("inducing_points", [None, 4])
def test_policy_is_permutation_equivariant(inducing_points):
    torch.manual_seed(0)
    policy = SetTransformerPolicy(6, inducing_points=inducing_points).eval()
    x = torch.randn(50, 6)
    perm = torch.randperm(50, generator=_gen(1))
    torch.testing.assert_close(policy(x[perm]), policy(x)[perm], atol=1e-5, rtol=1e-5)


def test_policy_batch_matches_single_pools():
    policy = SetTransformerPolicy(6).eval()
    x = torch.randn(3, 20, 6, generator=_gen())
    out = policy(x)
    assert out.shape == (3, 20)
    torch.testing.assert_close(out[1], policy(x[1]), atol=1e-5, rtol=1e-5)


def test_policy_rejects_wrong_feature_count():
    expected = r"x must have shape \(N, 6\) or \(batch, N, 6\), got \(10, 5\)"
    with pytest.raises(ValueError, match=expected):
        SetTransformerPolicy(6)(torch.randn(10, 5))


def test_policy_rejects_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match="got width=30 and heads=4"):
        SetTransformerPolicy(6, width=30)


def test_policy_temperature_is_a_learned_parameter():
    policy = SetTransformerPolicy(6, temperature=0.5)
    assert any(p is policy.log_temperature for p in policy.parameters())
    assert policy.temperature.item() == pytest.approx(0.5)


def test_policy_file_round_trip_gives_identical_logits(tmp_path):
    policy = SetTransformerPolicy(6, width=16, layers=2, heads=2, temperature=0.3)
    with torch.no_grad():
        policy.log_temperature.fill_(-2.0)  # a learned value, not the initial one
    path = tmp_path / "policy.pt"
    save_policy(policy, path, metadata={"budget": 400, "dataset": "adult"})
    loaded, metadata = load_policy(path, device="cpu")
    x = torch.randn(30, 6, generator=_gen())
    assert torch.equal(loaded(x), policy.eval()(x))
    assert loaded.temperature.item() == pytest.approx(math.exp(-2.0))
    assert metadata["budget"] == 400 and metadata["dataset"] == "adult"
    assert metadata["policy_config"] == policy.config


def test_corrupt_policy_file_raises_policy_file_error(tmp_path):
    path = tmp_path / "policy.pt"
    save_policy(SetTransformerPolicy(6), path, metadata={})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(PolicyFileError, match="policy.pt' is not a readable PANDA policy file"):
        load_policy(path)


def test_model_file_is_not_a_policy_file(tmp_path):
    path = tmp_path / "model.pt"
    model = FittedModel(LogisticRegression(6), architecture={"kind": "logistic", "n_features": 6})
    path.write_bytes(model.to_bytes())
    with pytest.raises(PolicyFileError, match="model.pt' is not a PANDA policy file"):
        load_policy(path)


def test_policy_file_with_wrong_weights_raises(tmp_path):
    path = tmp_path / "policy.pt"
    save_policy(SetTransformerPolicy(6), path, metadata={})
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["input.weight"] = torch.zeros(3, 3)
    torch.save(payload, path)
    with pytest.raises(PolicyFileError, match="is a damaged PANDA policy file"):
        load_policy(path)


def test_missing_policy_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "absent.pt")


# --------------------------------------------------------------------------- #
# Gumbel-top-B (hard)
# --------------------------------------------------------------------------- #


def test_gumbel_top_b_returns_b_distinct_items():
    idx = gumbel_top_b(torch.randn(1000, generator=_gen()), 400, generator=_gen(1))
    assert idx.shape == (400,) and idx.dtype == torch.long
    assert len(set(idx.tolist())) == 400


def test_gumbel_top_b_is_deterministic_given_a_seeded_generator():
    logits = torch.randn(100, generator=_gen())
    first = gumbel_top_b(logits, 10, generator=_gen(5))
    assert torch.equal(first, gumbel_top_b(logits, 10, generator=_gen(5)))


@pytest.mark.parametrize("b", [0, 11])
def test_gumbel_top_b_rejects_budget_outside_pool(b):
    with pytest.raises(ValueError, match=f"got b={b} for N=10"):
        gumbel_top_b(torch.zeros(10), b)


def test_gumbel_top_b_samples_without_replacement_from_softmax():
    # P({i, j}) for a 2-item draw without replacement: p_i p_j/(1-p_i) + p_j p_i/(1-p_j).
    logits = torch.tensor([1.0, 0.0, -0.5, -1.5])
    p = torch.softmax(logits.double(), 0)
    draws = gumbel_top_b(logits.expand(40_000, 4), 2, generator=_gen(3))
    pairs = torch.sort(draws, dim=1).values
    for i, j in [(0, 1), (0, 2), (1, 2), (2, 3)]:
        expected = p[i] * p[j] / (1 - p[i]) + p[j] * p[i] / (1 - p[j])
        observed = ((pairs[:, 0] == i) & (pairs[:, 1] == j)).double().mean()
        assert abs(observed - expected) < 0.01


# --------------------------------------------------------------------------- #
# Relaxed top-B
# --------------------------------------------------------------------------- #


def test_relaxed_gradients_match_finite_differences():
    logits = torch.randn(12, dtype=torch.float64, generator=_gen()).requires_grad_()
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    gumbel = sample_gumbel(12, generator=_gen(1), dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda s, t: relaxed_top_b(s, 4, temperature=t, gumbel=gumbel), (logits, tau)
    )


def _newton_reference(z, tau, b, start, iterations=40):
    """Differentiable (slow) Newton solve of Σσ((z − t)/τ) = b, unrolled by autograd."""
    t = start
    for _ in range(iterations):
        a = torch.sigmoid((z - t) / tau)
        t = t + (a.sum() - b) / (a * (1 - a)).sum() * tau
    return torch.sigmoid((z - t) / tau)


def test_relaxed_gradients_match_autograd_through_newton_solve():
    z = torch.randn(15, dtype=torch.float64, generator=_gen(2))
    tau = torch.tensor(0.4, dtype=torch.float64)
    zero = torch.zeros(15, dtype=torch.float64)
    ours = torch.autograd.functional.jacobian(
        lambda s, t: relaxed_top_b(s, 5, temperature=t, gumbel=zero), (z, tau)
    )
    start = torch.sort(z, descending=True).values[4].detach()  # near the solution
    reference = torch.autograd.functional.jacobian(
        lambda s, t: _newton_reference(s, t, 5, start), (z, tau)
    )
    torch.testing.assert_close(ours[0], reference[0], atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(ours[1], reference[1], atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("tau", [1.0, 0.1, 0.01, 0.001])
def test_relaxed_weights_at_adult_scale(tau):
    logits = (2 * torch.randn(11_305, generator=_gen())).requires_grad_()
    temperature = torch.tensor(tau, requires_grad=True)
    weights = relaxed_top_b(logits, 400, temperature=temperature, generator=_gen(1))
    assert weights.dtype == torch.float32
    assert weights.min() >= 0 and weights.max() <= 1
    assert abs(weights.sum().item() - 400) < 400 * 1e-4
    (weights * torch.linspace(-1, 1, 11_305)).sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(temperature.grad)


def test_relaxed_tends_to_the_hard_sample_at_low_temperature():
    logits = torch.randn(500, generator=_gen())
    gumbel = sample_gumbel(500, generator=_gen(1))
    hard = gumbel_top_b(logits, 50, gumbel=gumbel)
    weights = relaxed_top_b(logits, 50, temperature=1e-4, gumbel=gumbel)
    assert set(torch.topk(weights, 50).indices.tolist()) == set(hard.tolist())
    assert weights[hard].min() > 0.99


def test_relaxed_is_invariant_to_a_logit_shift():
    logits = torch.randn(30, dtype=torch.float64, generator=_gen()).requires_grad_()
    zero = torch.zeros(30, dtype=torch.float64)
    weights = relaxed_top_b(logits, 7, temperature=0.5, gumbel=zero)
    shifted = relaxed_top_b(logits + 3.0, 7, temperature=0.5, gumbel=zero)
    torch.testing.assert_close(weights, shifted)
    (weights * torch.arange(30.0, dtype=torch.float64)).sum().backward()
    assert abs(logits.grad.sum().item()) < 1e-12


def test_straight_through_is_hard_forward_and_relaxed_backward():
    logits = torch.randn(200, dtype=torch.float64, generator=_gen()).requires_grad_()
    gumbel = sample_gumbel(200, generator=_gen(1), dtype=torch.float64)
    probe = torch.randn(200, dtype=torch.float64, generator=_gen(2))
    hard = straight_through_top_b(logits, 20, temperature=0.3, gumbel=gumbel)
    picked = gumbel_top_b(logits, 20, gumbel=gumbel)
    assert set(hard.nonzero().squeeze(1).tolist()) == set(picked.tolist())
    assert torch.equal(hard.detach().unique(), torch.tensor([0.0, 1.0], dtype=torch.float64))
    (st_grad,) = torch.autograd.grad((hard * probe).sum(), logits)
    soft = relaxed_top_b(logits, 20, temperature=0.3, gumbel=gumbel)
    (soft_grad,) = torch.autograd.grad((soft * probe).sum(), logits)
    torch.testing.assert_close(st_grad, soft_grad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, "temperature must be positive and finite, got 0.0"),
        (
            {"temperature": 1.0, "gumbel": torch.zeros(3)},
            r"gumbel must have the shape of logits \(10,\), got \(3,\)",
        ),
    ],
)
def test_relaxed_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        relaxed_top_b(torch.zeros(10), 3, **kwargs)


def test_relaxed_rejects_masked_logits():
    logits = torch.zeros(10)
    logits[0] = -math.inf
    with pytest.raises(ValueError, match="logits must be finite"):
        relaxed_top_b(logits, 3, temperature=1.0)


# --------------------------------------------------------------------------- #
# Inner learner
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_head_equals_a_plain_torch_training_loop(optimizer):
    x, y, g = _toy(dtype=torch.float32)
    w = torch.rand(40, generator=g)
    linear = nn.Linear(5, 1)
    params = {k: v.detach().clone() for k, v in linear.named_parameters()}
    lr = 0.3 if optimizer == "sgd" else 0.05
    ours = train_head(params, x, y, w, steps=25, lr=lr, l2=0.1, optimizer=optimizer)
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(linear.parameters(), lr=lr)
    for _ in range(25):
        opt.zero_grad()
        logits = linear(x).squeeze(1)
        losses = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        ((w * losses).sum() / w.sum() + 0.05 * (linear.weight**2).sum()).backward()
        opt.step()
    torch.testing.assert_close(ours["weight"], linear.weight.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours["bias"], linear.bias.detach(), atol=1e-6, rtol=0)


def test_train_head_through_functional_call_on_nn_linear():
    x, y, g = _toy()
    w = torch.rand(40, generator=g, dtype=torch.float64)
    linear = nn.Linear(5, 1).double()
    before = {k: v.detach().clone() for k, v in linear.named_parameters()}
    params = dict(linear.named_parameters())
    via_module = train_head(params, x, y, w, steps=10, lr=0.5, l2=0.1, module=linear)
    plain = train_head(before, x, y, w, steps=10, lr=0.5, l2=0.1)
    for name in plain:
        torch.testing.assert_close(via_module[name], plain[name])
        assert torch.equal(linear.get_parameter(name).detach(), before[name])  # module untouched
    torch.testing.assert_close(head_logits(via_module, x, module=linear), head_logits(plain, x))


def _val_loss(params, x_val, y_val):
    return head_loss(params, x_val, y_val)


def test_outer_gradient_to_weights_matches_finite_differences():
    x, y, g = _toy(n=20, k=3)
    x_val, y_val, _ = _toy(n=30, k=3, seed=1)
    w = torch.rand(20, generator=g, dtype=torch.float64).requires_grad_()
    init = init_head(3, dtype=torch.float64)

    def outer(weights):
        return _val_loss(train_head(init, x, y, weights, steps=8, lr=0.7, l2=0.05), x_val, y_val)

    assert torch.autograd.gradcheck(outer, (w,))


def test_outer_gradient_to_weights_matches_finite_differences_with_adam():
    x, y, g = _toy(n=20, k=3)
    x_val, y_val, _ = _toy(n=30, k=3, seed=1)
    w = torch.rand(20, generator=g, dtype=torch.float64).requires_grad_()
    init = init_head(3, dtype=torch.float64)
    init["weight"] += 0.1

    def outer(weights):
        trained = train_head(init, x, y, weights, steps=6, lr=0.1, optimizer="adam")
        return _val_loss(trained, x_val, y_val)

    assert torch.autograd.gradcheck(outer, (w,))


def test_first_order_drops_hessians_but_keeps_a_gradient_to_weights():
    x, y, g = _toy(n=20, k=3)
    x_val, y_val, _ = _toy(n=30, k=3, seed=1)
    w = torch.rand(20, generator=g, dtype=torch.float64).requires_grad_()
    init = {k: v.requires_grad_() for k, v in init_head(3, dtype=torch.float64).items()}
    init["weight"].data += 0.2
    steps, lr = 6, 0.7
    first = train_head(init, x, y, w, steps=steps, lr=lr, first_order=True)
    full = train_head(init, x, y, w, steps=steps, lr=lr)
    torch.testing.assert_close(first["weight"], full["weight"])  # same forward values
    val = _val_loss(first, x_val, y_val)
    grad_w, grad_init_w, grad_init_b = torch.autograd.grad(val, (w, init["weight"], init["bias"]))

    # Reference by hand. u = ∇θ val at θ_K; first order: d val/d θ_0 = u (FOMAML) and
    # d val/d w_j = −lr Σ_k <u, ∂g_k/∂w_j>, g_k = Σ_i w_i (p_ki − y_i) x̃_i / Σw.
    xt = torch.cat([x, torch.ones(20, 1, dtype=torch.float64)], dim=1)
    theta_k = torch.cat([init["weight"].detach()[0], init["bias"].detach()])
    wd, total = w.detach(), w.detach().sum()
    reference = torch.zeros(20, dtype=torch.float64)
    residuals = []
    for _ in range(steps):
        r = torch.sigmoid(xt @ theta_k) - y
        residuals.append(r)
        theta_k = theta_k - lr * (wd * r) @ xt / total
    xv = torch.cat([x_val, torch.ones(30, 1, dtype=torch.float64)], dim=1)
    u = (torch.sigmoid(xv @ theta_k) - y_val) @ xv / 30
    for r in residuals:
        g_mean = (wd * r) @ xt / total
        reference -= lr * ((r[:, None] * xt - g_mean) @ u) / total
    torch.testing.assert_close(grad_w, reference)
    torch.testing.assert_close(torch.cat([grad_init_w[0], grad_init_b]), u)
    full_grad_w = torch.autograd.grad(_val_loss(full, x_val, y_val), w)[0]
    assert not torch.allclose(grad_w, full_grad_w)  # the Hessian terms are really gone


def test_train_head_works_under_no_grad():
    x, y, g = _toy()
    w = torch.rand(40, generator=g, dtype=torch.float64)
    expected = train_head(init_head(5, dtype=torch.float64), x, y, w, steps=5, lr=0.5)
    with torch.no_grad():
        inside = train_head(init_head(5, dtype=torch.float64), x, y, w, steps=5, lr=0.5)
    torch.testing.assert_close(inside["weight"], expected["weight"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": -1, "lr": 0.1}, "steps must be a non-negative int, got -1"),
        ({"steps": 3, "lr": 0.0}, "lr must be positive, got 0.0"),
        (
            {"steps": 3, "lr": 0.1, "optimizer": "lbfgs"},
            "optimizer must be one of 'sgd' or 'adam', got 'lbfgs'",
        ),
    ],
)
def test_train_head_rejects_bad_arguments(kwargs, message):
    x, y, _ = _toy()
    with pytest.raises(ValueError, match=message):
        train_head(init_head(5, dtype=torch.float64), x, y, None, **kwargs)


# --------------------------------------------------------------------------- #
# End to end: policy -> relaxed top-B -> inner learner -> validation loss + parity
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("inducing_points", [None, 8])
def test_meta_gradient_reaches_every_policy_parameter(inducing_points):
    torch.manual_seed(0)
    g = _gen(4)
    pool = torch.randn(300, 8, generator=g)
    pool_y = (pool[:, 0] + pool[:, 1] > 0).float()
    x_val = torch.randn(200, 8, generator=g)
    y_val = (x_val[:, 0] + x_val[:, 1] > 0).float()
    groups_val = (x_val[:, 1] > 0).long()
    policy = SetTransformerPolicy(8, inducing_points=inducing_points)

    weights = relaxed_top_b(policy(pool), 30, temperature=policy.temperature, generator=_gen(5))
    head = train_head(init_head(8), pool, pool_y, weights, steps=20, lr=0.5)
    val_logits = head_logits(head, x_val)
    loss = nn.functional.binary_cross_entropy_with_logits(val_logits, y_val)
    loss = loss + soft_demographic_parity(torch.sigmoid(val_logits), groups_val)
    loss.backward()

    for name, param in policy.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_closed_form_head_steps_equal_the_torch_func_path():
    from torch import nn

    from fairal.panda.inner import train_head

    generator = torch.Generator().manual_seed(5)
    X = torch.randn(60, 4, generator=generator, dtype=torch.float64)
    y = (torch.rand(60, generator=generator) > 0.5).double()
    w1 = torch.rand(60, generator=generator, dtype=torch.float64).requires_grad_()
    w2 = w1.detach().clone().requires_grad_()
    linear = nn.Linear(4, 1).double()
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
    fast = train_head({"weight": torch.zeros(1, 4, dtype=torch.float64), "bias": torch.zeros(1, dtype=torch.float64)},
                      X, y, w1, steps=15, lr=0.7, l2=0.01)
    slow = train_head(dict(linear.named_parameters()), X, y, w2, steps=15, lr=0.7, l2=0.01, module=linear)
    torch.testing.assert_close(fast["weight"], slow["weight"])
    torch.testing.assert_close(fast["bias"], slow["bias"])
    (X @ fast["weight"].T).sum().backward()
    (X @ slow["weight"].T).sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad)
