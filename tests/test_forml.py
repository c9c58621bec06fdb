import numpy as np
import pytest
import torch

from fairal.datasets import load_digits
from fairal.trainers._base import Trainer
from fairal.trainers.forml import FORMLTrainer, meta_gradient, meta_loss_value, meta_objective
from fairal.trainers.models import make_model


def _tiny_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.normal(size=(8, 3)), dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    Xv = torch.tensor(rng.normal(size=(6, 3)), dtype=torch.float64)
    yv = torch.tensor([0, 1, 0, 1, 1, 0])
    gv = torch.tensor([0, 0, 1, 1, 2, 2])
    torch.manual_seed(seed)
    module = make_model("logistic", 3, n_classes=2).double()
    params = {k: p.detach().clone() for k, p in module.named_parameters()}
    w = torch.tensor(rng.normal(scale=0.5, size=8), dtype=torch.float64)
    return module, params, w, (X, y), (Xv, yv, gv)


@pytest.mark.parametrize("meta_loss", ["max_loss_d", "mean_loss_d", "cross_entropy"])
@pytest.mark.parametrize("reverse", [False, True])
def test_meta_gradient_matches_finite_differences(meta_loss, reverse):
    module, params, w, train, exemplar = _tiny_problem()
    kwargs = dict(meta_loss=meta_loss, inner_lr=0.5, reverse=reverse, n_groups=3)
    dw, _ = meta_gradient(module, params, {}, w, train, exemplar, **kwargs)
    eps = 1e-6
    numeric = torch.zeros_like(w)
    for i in range(len(w)):
        step = torch.zeros_like(w)
        step[i] = eps
        plus = meta_objective(module, params, {}, w + step, train, exemplar, **kwargs)
        minus = meta_objective(module, params, {}, w - step, train, exemplar, **kwargs)
        numeric[i] = (plus - minus) / (2 * eps)
    torch.testing.assert_close(dw, numeric, rtol=1e-5, atol=1e-9)
    assert (dw.abs() > 1e-8).all()


def test_reverse_flips_the_first_order_meta_gradient():
    module, params, w, train, exemplar = _tiny_problem()
    kwargs = dict(meta_loss="max_loss_d", inner_lr=1e-4, n_groups=3)
    forward, _ = meta_gradient(module, params, {}, w, train, exemplar, reverse=False, **kwargs)
    backward, _ = meta_gradient(module, params, {}, w, train, exemplar, reverse=True, **kwargs)
    torch.testing.assert_close(forward, -backward, rtol=1e-3, atol=0)


def test_meta_losses_on_group_means():
    losses = torch.tensor([1.0, 3.0, 4.0, 0.0, 0.0])
    group = torch.tensor([0, 0, 1, 2, 2])  # group means 2, 4, 0
    assert meta_loss_value(losses, group, 3, "max_loss_d").item() == 4.0
    assert meta_loss_value(losses, group, 3, "mean_loss_d").item() == pytest.approx((2 + 2 + 4) / 3)
    assert meta_loss_value(losses, group, 3, "cross_entropy").item() == pytest.approx(1.6)


def test_look_ahead_leaves_module_untouched_and_update_uses_new_weights():
    module, _, _, (X, y), (Xv, yv, gv) = _tiny_problem()
    trainer = FORMLTrainer(model="logistic", lr=0.3, weight_lr=50.0, momentum=0.0)
    before = {k: p.detach().clone() for k, p in module.named_parameters()}
    w = torch.zeros(8, dtype=torch.float64)
    idx = torch.arange(8)
    optimizer = torch.optim.SGD(module.parameters(), lr=trainer.lr)

    params = {k: p.detach() for k, p in module.named_parameters()}
    meta_gradient(module, params, {}, w.clone(), (X, y), (Xv, yv, gv),
                  meta_loss="max_loss_d", inner_lr=0.3, reverse=False, n_groups=3)
    for k, p in module.named_parameters():
        assert torch.equal(p, before[k])

    trainer.step(module, optimizer, w, idx, (X, y), (Xv, yv, gv), n_groups=3)
    assert not torch.allclose(w, torch.zeros(8, dtype=torch.float64))  # step 11 moved w in place
    reference = make_model("logistic", 3, n_classes=2).double()
    reference.load_state_dict(before)
    from fairal.trainers.erm import classification_loss
    loss = (torch.softmax(w, dim=0) * classification_loss(reference(X), y)).sum()
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    for (k, _), g in zip(reference.named_parameters(), grads):
        torch.testing.assert_close(dict(module.named_parameters())[k].detach(), before[k] - 0.3 * g)


@pytest.mark.parametrize(("params", "message"), [
    (dict(meta_loss="tprd"), "meta_loss must be one of 'max_loss_d', 'mean_loss_d', 'cross_entropy', got 'tprd'"),
    (dict(model="resnet"), "model must be one of 'logistic' or 'mlp', got 'resnet'"),
    (dict(epochs=0), "epochs must be a positive integer, got 0"),
    (dict(condense=1.0), "condense must be in [0, 1), got 1.0"),
    (dict(ema=1.5), "ema must be in [0, 1), got 1.5"),
])
def test_bad_arguments_raise(params, message):
    X = np.zeros((10, 2), dtype=np.float32)
    y = np.array([0, 1] * 5)
    with pytest.raises(ValueError) as error:
        FORMLTrainer(**params).fit((X, y))
    assert str(error.value) == message


@pytest.fixture(scope="module")
def corrupted_digits():
    """Digits with 20% of training labels changed to 2 (FORML §4.1, smaller)."""
    d = load_digits()
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(d.y))
    test, val, train = perm[:500], perm[500:800], perm[800:]
    y_train = d.y[train].copy()
    changed = rng.choice(len(train), size=int(0.2 * len(train)), replace=False)
    y_train[changed] = 2
    changed = changed[d.y[train][changed] != 2]
    return dict(train=(d.X[train], y_train, y_train), val=(d.X[val], d.y[val], d.y[val]),
                test=(d.X[test], d.y[test]), changed=changed)


def _fit(data, **params):
    kwargs = dict(epochs=15, lr=0.1, batch_size=64, random_state=0)
    return FORMLTrainer(**{**kwargs, **params}).fit(data["train"], validation=data["val"])


def test_forml_downweights_corrupted_labels(corrupted_digits):
    # Test-size TPRD/maxFNR differences between FORML and uniform weights were
    # not robust (one seed, 500 test digits: FORML was better in some runs,
    # worse in others), so this asserts on what the meta-step controls: the
    # learned logits of the examples whose label was changed to 2 end up lower
    # than those of the clean ones (measured gap -0.22 after 15 epochs; uniform: 0).
    uniform = _fit(corrupted_digits, weight_lr=0.0)
    forml = _fit(corrupted_digits, weight_lr=1.0)
    assert isinstance(FORMLTrainer(), Trainer)
    w = forml.info["w"]
    changed = np.zeros(len(w), dtype=bool)
    changed[corrupted_digits["changed"]] = True
    assert w[changed].mean() < w[~changed].mean() - 0.1
    assert uniform.info["w"].std() == 0
    np.testing.assert_allclose(forml.details.example_weights.sum(), 1.0)


def test_condensation_drops_lowest_ema_and_retrains(corrupted_digits):
    model = _fit(corrupted_digits, epochs=3, condense=0.1)
    ema, kept = model.info["ema_loss"], model.info["kept_index"]
    n = len(ema)
    assert len(kept) == n - round(0.1 * n)
    dropped = np.setdiff1d(np.arange(n), kept)
    assert ema[dropped].max() <= ema[kept].min()


def test_holds_out_exemplars_when_no_validation():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    group = np.where(rng.random(200) < 0.1, "b", "a")
    model = FORMLTrainer(model="logistic", epochs=2).fit((X, y, group))
    held = np.setdiff1d(np.arange(200), model.details.rows)
    assert 15 <= len(held) <= 25
    assert (group[held] == "b").sum() >= 3
    assert model.info["groups"] == ["a", "b"]


@pytest.mark.parametrize("meta_loss", ["max_loss_d", "mean_loss_d", "cross_entropy"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", ["mlp", "logistic", "other"])
def test_fast_step_moves_w_exactly_as_the_reference_meta_gradient(meta_loss, reverse, kind):
    # step() computes the meta-gradient with plain autograd on a shared forward pass;
    # the pure torch.func meta_gradient is the reference (itself checked against finite differences).
    rng = np.random.default_rng(3)
    X = torch.tensor(rng.normal(size=(16, 5)), dtype=torch.float64)
    y = torch.tensor(rng.integers(0, 2, 16))
    Xv = torch.tensor(rng.normal(size=(9, 5)), dtype=torch.float64)
    yv = torch.tensor(rng.integers(0, 2, 9))
    gv = torch.tensor([0, 1, 2] * 3)
    prior = torch.tensor(rng.uniform(0.5, 1.5, 16), dtype=torch.float64)
    torch.manual_seed(0)
    if kind == "other":  # not one of fairal's models: the look-ahead goes through functional_call
        module = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    else:
        module = make_model(kind, 5, n_classes=2, hidden=[7, 4]).double()
    w = torch.tensor(rng.normal(scale=0.5, size=16), dtype=torch.float64)
    idx = torch.arange(16)
    params = {k: p.detach().clone() for k, p in module.named_parameters()}
    expected, value = meta_gradient(module, params, {}, w.clone(), (X, y), (Xv, yv, gv), meta_loss=meta_loss,
                                    inner_lr=0.2, reverse=reverse, n_groups=3, prior=prior)
    trainer = FORMLTrainer(meta_loss=meta_loss, lr=0.2, weight_lr=1.0, reverse=reverse)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.2)
    w_fast = w.clone()
    got_value, _ = trainer.step(module, optimizer, w_fast, idx, (X, y), (Xv, yv, gv), n_groups=3, prior=prior)
    assert got_value == pytest.approx(float(value), rel=1e-12)
    assert torch.allclose(w - w_fast, expected, rtol=1e-10, atol=1e-14)
    assert (expected != 0).all()
