"""Batched meta-training (M tasks per step) and the converged "erm" inner learner with implicit gradients."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from fairal.datasets import load_compas, panda_split
from fairal.metrics import soft_demographic_parity
from fairal.panda.inner import fit_logistic, train_linear_heads
from fairal.panda.train import (
    MetaConfig,
    _MetaStep,
    _new_policy,
    _TaskData,
    _Tasks,
    load_trained_policy,
    meta_train,
    train_policy,
)
from fairal.strategies import make_strategy
from fairal.trainers.erm import ERMTrainer

DATA = Path(__file__).parent / "data"
SMALL = MetaConfig(budget=20, pool_size=200, validation_size=300, n_initial=10, inner_steps=10, width=16, heads=2,
                   iterations=6, eval_every=3, eval_tasks=2, rho=0.02, seed=3)


def _synthetic(n=900, k=6, seed=7):
    """The data tests/data/make_panda_meta_train_reference.py used."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)).astype(np.float32)
    g = (rng.random(n) < 0.4).astype(np.int64)
    y = ((X[:, 0] + 0.8 * g + 0.3 * rng.normal(size=n)) > 0.3).astype(np.int64)
    return X, y, g


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_one_task_per_step_gives_the_numbers_of_the_unbatched_code(device, monkeypatch):
    """meta_batch=1 reproduces what the one-task meta_train of commit ed58989 recorded (on the CPU).

    On CUDA the same steps round otherwise: an H200 moved the sum of one bias (terms that nearly cancel)
    by 1.1e-4 of itself, so there the check is to 1e-3."""
    reference = json.loads((DATA / "panda_meta_train_m1_reference.json").read_text())
    X, y, g = _synthetic()
    monkeypatch.setenv("FAIRAL_DEVICE", device)
    torch.set_num_threads(1)
    result = meta_train(X, y, g, 2, config=replace(SMALL, meta_batch=1))
    tolerance = {"rel": 1e-4, "abs": 1e-5} if device == "cpu" else {"rel": 1e-3, "abs": 1e-4}
    for column, expected in reference["history"].items():
        got = result.history[column].to_numpy(dtype=float)
        np.testing.assert_allclose(got, np.asarray(expected, dtype=float), rtol=tolerance["rel"],
                                   atol=tolerance["abs"], err_msg=column)
    state = {k: float(v.double().sum()) for k, v in result.policy.state_dict().items()}
    for name, expected in reference["state_sums"].items():
        assert state[name] == pytest.approx(expected, **tolerance), name


@pytest.mark.parametrize("learner", ["head", "erm"])
def test_a_batch_of_tasks_equals_the_tasks_one_by_one(learner):
    """Loss and its policy gradient for M = 3 are the mean over the 3 single tasks; disparities match row by row."""
    X, y, g = _synthetic()
    c = replace(SMALL, inner_learner=learner)
    data = _TaskData(X, y, g, 2, torch.device("cpu"))
    tasks = _Tasks(len(y), y, c, np.random.default_rng(0), torch.Generator().manual_seed(0), torch.device("cpu"))
    batch = tasks.batch(3)
    policy = _new_policy(c, data.inputs.shape[1], torch.device("cpu"))
    step = _MetaStep(policy, data, c)
    params = list(policy.parameters())
    loss, disparity = step(batch)
    grads = torch.autograd.grad(loss, params)
    singles = [type(batch)(*(t[m:m + 1] for t in (batch.seed, batch.pool, batch.val, batch.gumbel)))
               for m in range(3)]
    single_losses, single_disparities, single_grads = [], [], []
    for one in singles:
        one_loss, one_disparity = step(one)
        single_losses.append(one_loss)
        single_disparities.append(one_disparity)
        single_grads.append(torch.autograd.grad(one_loss, params))
    torch.testing.assert_close(loss, torch.stack(single_losses).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(disparity, torch.cat(single_disparities), rtol=1e-5, atol=1e-6)
    for batched, *separate in zip(grads, *single_grads):
        torch.testing.assert_close(batched, torch.stack(separate).mean(0), rtol=1e-4, atol=1e-6)
    assert any(float(gr.abs().max()) > 0 for gr in grads)  # the test would pass trivially on zero gradients


def test_batched_soft_disparity_equals_each_row():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(4, 50, generator=generator, requires_grad=True)
    groups = torch.randint(0, 3, (4, 50), generator=generator)
    groups[2] = groups[2].clamp(max=1)  # a row with a missing group
    for method in ("to_overall", "between_groups"):
        for smooth in (None, 0.05):
            batched = soft_demographic_parity(probs, groups, method=method, smooth=smooth)
            rows = torch.stack([soft_demographic_parity(probs[m], groups[m], method=method, smooth=smooth)
                                for m in range(4)])
            torch.testing.assert_close(batched, rows)
            torch.testing.assert_close(torch.autograd.grad(batched.sum(), probs)[0],
                                       torch.autograd.grad(rows.sum(), probs)[0])


def test_batched_heads_equal_one_head_at_a_time():
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(3, 40, 5, generator=generator)
    y = (torch.rand(3, 40, generator=generator) < 0.4).float()
    w = torch.rand(3, 40, generator=generator)
    weight, bias = train_linear_heads(X, y, w, steps=15, lr=0.5, l2=1e-3)
    for m in range(3):
        one_w, one_b = train_linear_heads(X[m:m + 1], y[m:m + 1], w[m:m + 1], steps=15, lr=0.5, l2=1e-3)
        torch.testing.assert_close(weight[m:m + 1], one_w)
        torch.testing.assert_close(bias[m:m + 1], one_b)


def _compas_features(n=600):
    compas = load_compas()
    rows = np.random.default_rng(0).permutation(len(compas))[:n]
    X = torch.as_tensor(compas.X[rows][:, :8], dtype=torch.float64)
    return X, torch.as_tensor(compas.y[rows], dtype=torch.float64), compas


def test_erm_learner_is_the_converged_logistic_regression_the_app_deploys():
    """Same optimum as scikit-learn's LogisticRegression(C) and as fairal's ERMTrainer on the same rows."""
    X, y, _ = _compas_features()
    weight, bias = fit_logistic(X[None], y[None], None, C=0.5)
    reference = SkLogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X.numpy(), y.numpy())
    np.testing.assert_allclose(weight[0].numpy(), reference.coef_[0], atol=1e-5)  # sklearn stops at ~1e-6
    assert float(bias[0]) == pytest.approx(float(reference.intercept_[0]), abs=1e-5)
    chosen = np.arange(0, 600, 3)  # a hard selection: weights 0/1
    w = torch.zeros(600, dtype=torch.float64)
    w[chosen] = 1.0
    weight, bias = fit_logistic(X[None].float(), y[None].float(), w[None].float())
    model = ERMTrainer(C=1.0, max_iter=500, device="cpu").fit((X.numpy()[chosen].astype(np.float32),
                                                               y.numpy()[chosen].astype(np.int64), None))
    linear = model.module.linear
    np.testing.assert_allclose(weight[0].numpy(), linear.weight.detach().numpy()[0], atol=2e-3)


def test_implicit_gradient_matches_finite_differences():
    """d(validation loss)/d(selection weights) through the converged learner, against central differences."""
    X, y, _ = _compas_features(400)
    train, val = slice(0, 250), slice(250, 400)
    w = torch.rand(250, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()

    def validation_loss(weights):
        weight, bias = fit_logistic(X[None, train], y[None, train], weights[None], C=1.0, tol=1e-13)
        logits = X[val] @ weight[0] + bias[0]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y[val])

    (gradient,) = torch.autograd.grad(validation_loss(w), w)
    eps = 1e-5
    for j in (0, 17, 101, 249):
        up, down = w.detach().clone(), w.detach().clone()
        up[j] += eps
        down[j] -= eps
        numeric = (validation_loss(up) - validation_loss(down)).item() / (2 * eps)
        assert gradient[j].item() == pytest.approx(numeric, rel=1e-4, abs=1e-9)
    assert gradient.abs().max() > 1e-4


def test_erm_policy_file_loads_in_the_app(tmp_path):
    """A policy meta-trained through the converged learner, in batches of 2 tasks, is written and ranks a pool."""
    compas = load_compas()
    config = MetaConfig(budget=30, pool_size=300, validation_size=300, n_initial=10, width=16, layers=1, heads=2,
                        iterations=2, eval_every=1, eval_tasks=2, inner_learner="erm", meta_batch=2)
    out = tmp_path / "erm.pt"
    result = train_policy(compas, config, out)
    assert result.best["eval_f1"] > 0
    trained = load_trained_policy(out)
    assert trained.metadata["config"]["inner_learner"] == "erm"
    assert trained.metadata["learner"]["kind"] == "erm"
    split = panda_split(len(compas), seed=0)
    chosen = make_strategy("panda", policy_path=out, random_state=0).query(None, compas.X, split.pool, n=25,
                                                                            groups=compas.group)
    assert len(set(chosen)) == 25 and set(chosen) <= set(split.pool)


def test_bad_meta_training_settings_are_refused():
    X, y, g = _synthetic()
    for bad, message in (({"meta_batch": 0}, "meta_batch"), ({"inner_learner": "svm"}, "inner_learner"),
                         ({"inner_C": 0.0}, "inner_C"), ({"min_temperature": 0.5}, "min_temperature")):
        with pytest.raises(ValueError, match=message):
            meta_train(X, y, g, 2, config=replace(SMALL, **bad))


def test_the_shipped_erm_policy_loads_and_ranks_adult():
    """The policy tune-policy found (meta-trained through the converged learner) picks from Adult's pool."""
    from fairal.datasets import load_adult

    path = Path(__file__).parents[1] / "data" / "policies" / "alternatives" / "panda-adult-sex-erm-isab32.pt"
    trained = load_trained_policy(path, device="cpu")
    assert trained.metadata["config"]["inner_learner"] == "erm" and trained.metadata["learner"]["kind"] == "erm"
    adult = load_adult()
    pool = panda_split(len(adult), seed=0).pool
    chosen = make_strategy("panda", policy_path=path, random_state=0).query(None, adult.X, pool, n=400,
                                                                            groups=adult.group)
    assert len(set(chosen)) == 400 and set(chosen) <= set(pool)
