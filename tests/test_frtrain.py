"""FR-Train (Roh et al., ICML 2020) on the paper's synthetic data.

Epoch counts are far below the paper's 4,000-10,000 to keep the file fast;
margins are set well inside what was measured at these settings.
"""

import numpy as np
import pytest
import torch

from fairal.datasets import make_synthetic
from fairal.metrics import disparate_impact_ratio
from fairal.trainers import ERMTrainer
from fairal.trainers.frtrain import (
    FRTrainTrainer,
    RobustnessDiscriminator,
    code_labels,
    code_prediction,
    example_weights,
    robust_input,
    robustness_term,
)
from fairal.trainers.models import FittedModel

N_TRAIN, N_VAL = 1200, 200


@pytest.fixture(scope="module")
def synthetic():
    ds = make_synthetic(N_TRAIN + N_VAL + 1000, seed=0, include_sensitive=True)  # X = [x1, x2, z] as in the paper
    X, y, g = np.asarray(ds.X), np.asarray(ds.y), np.asarray(ds.group)
    tr, va, te = slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VAL), slice(N_TRAIN + N_VAL, None)
    # Planted poisoning: 10% of the training rows, all in z=1, positive -> negative.
    rng = np.random.default_rng(0)
    candidates = np.flatnonzero((g[tr] == "z=1") & (y[tr] == 1))
    flipped = rng.choice(candidates, N_TRAIN // 10, replace=False)
    y_poisoned = y[tr].copy()
    y_poisoned[flipped] = 0
    return {
        "train": (X[tr], y[tr], g[tr]),
        "poisoned": (X[tr], y_poisoned, g[tr]),
        "flipped": flipped,
        "val": (X[va], y[va], g[va]),
        "test": (X[te], y[te], g[te]),
    }


def _di(model, test):
    X, y, g = test
    return disparate_impact_ratio(y, model.predict(X), sensitive_features=g)


def test_robustness_discriminator_scores_flipped_rows_lower(synthetic):
    model = FRTrainTrainer(lambda_f=0.0, lambda_r=0.4, lr_robust=0.05, epochs=1500, warmup=200).fit(
        synthetic["poisoned"], validation=synthetic["val"]
    )
    scores = model.details.robustness_scores
    assert scores.shape == (N_TRAIN,)
    flipped = np.zeros(N_TRAIN, dtype=bool)
    flipped[synthetic["flipped"]] = True
    # measured at these settings: flipped 0.429, clean 0.527 (the gap is transient: 0.04 at
    # 1,200 epochs, 0.12 at 1,800, ~0 at 2,500 once predictions harden; see the report)
    assert scores[flipped].mean() < scores[~flipped].mean() - 0.05
    weights = model.details.example_weights
    assert weights.shape == (N_TRAIN,) and np.all((weights > 0) & (weights <= 1))


def test_robustness_term_passes_gradient_to_classifier():
    torch.manual_seed(0)
    X = torch.randn(50, 3)
    z = (torch.rand(50) < 0.5).long()
    classifier = torch.nn.Linear(3, 1)
    d_robust = RobustnessDiscriminator(3 + 1 + 1)
    prob = torch.sigmoid(classifier(X).squeeze(-1))
    loss = -0.4 * robustness_term(d_robust, robust_input(X, z, prob, n_groups=2))
    loss.backward()
    assert classifier.weight.grad is not None
    assert classifier.weight.grad.abs().sum() > 0
    assert classifier.bias.grad.abs().sum() > 0


def test_fairness_only_improves_disparate_impact_over_lr(synthetic):
    lr = ERMTrainer().fit(synthetic["train"])
    fair = FRTrainTrainer(lambda_f=0.85, lambda_r=0.0, lr_classifier=0.005, lr_fair=0.01,
                          epochs=1500, warmup=200, d_steps=3).fit(synthetic["train"])
    lr_di, fair_di = _di(lr, synthetic["test"]), _di(fair, synthetic["test"])
    # measured: LR ~0.2, FR-Train (λr = 0) ~0.85
    assert fair_di > lr_di + 0.3
    accuracy = (fair.predict(synthetic["test"][0]) == synthetic["test"][1]).mean()
    assert accuracy > 0.6
    assert isinstance(fair, FittedModel) and fair.details.robustness_scores is None


def test_missing_validation_is_a_clear_error(synthetic):
    with pytest.raises(ValueError, match="validation"):
        FRTrainTrainer(lambda_r=0.4, epochs=5).fit(synthetic["train"])
    with pytest.raises(ValueError, match="group"):
        FRTrainTrainer(lambda_r=0.0, epochs=5).fit(synthetic["train"][:2])
    with pytest.raises(ValueError, match="lambda"):
        FRTrainTrainer(lambda_f=0.7, lambda_r=0.4, epochs=5).fit(synthetic["train"], validation=synthetic["val"])
    with pytest.raises(ValueError, match="fairness"):
        FRTrainTrainer(fairness="parity", epochs=5).fit(synthetic["train"], validation=synthetic["val"])


@pytest.mark.parametrize("fairness", ["equalized_odds", "equal_opportunity"])
def test_other_fairness_measures_run(synthetic, fairness):
    model = FRTrainTrainer(fairness=fairness, epochs=60, warmup=20, d_steps=3, reweight_every=10).fit(
        synthetic["poisoned"], validation=synthetic["val"]
    )
    proba = model.predict_proba(synthetic["test"][0])
    assert proba.shape == (len(synthetic["test"][0]), 2) and np.all(np.isfinite(proba))
    assert model.details.robustness_scores.shape == (N_TRAIN,)


def test_hidden_layer_model_round_trips_and_is_reproducible(synthetic):
    trainer = FRTrainTrainer(hidden=8, epochs=40, warmup=10, random_state=3)
    first = trainer.fit(synthetic["poisoned"], validation=synthetic["val"])
    second = trainer.fit(synthetic["poisoned"], validation=synthetic["val"])
    X = synthetic["test"][0]
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    restored = FittedModel.from_bytes(first.to_bytes(), device="cpu")
    np.testing.assert_allclose(restored.predict_proba(X), first.predict_proba(X), atol=1e-6)


def test_example_weights_follow_the_authors_form():
    scores = torch.tensor([0.0, 0.5, 1.0])
    # discriminator far better than the classifier (R -> 1): weights = D_r scores
    np.testing.assert_allclose(example_weights(scores, 100.0, 1.0, C=3.0).numpy(), scores.numpy(), atol=1e-6)
    # discriminator no better (R -> 0): weights ~ 1
    np.testing.assert_allclose(example_weights(scores, 0.0, 1.0, C=30.0).numpy(), 1.0, atol=1e-6)


OPTIONS = [(ri, lc, rl) for ri in ("probability", "logit") for lc in ("01", "pm1") for rl in ("bce", "generator")]


@pytest.mark.parametrize("robust_input_mode, label_coding, reweight_loss", OPTIONS)
def test_authors_conventions_run_and_pass_gradient(synthetic, robust_input_mode, label_coding, reweight_loss):
    # the ŷ that D_r sees keeps its graph in every option
    torch.manual_seed(0)
    X = torch.randn(50, 3)
    z = (torch.rand(50) < 0.5).long()
    classifier = torch.nn.Linear(3, 1)
    d_robust = RobustnessDiscriminator(3 + 1 + 1)
    y_hat = code_prediction(classifier(X).squeeze(-1), robust_input_mode, label_coding)
    (-0.4 * robustness_term(d_robust, robust_input(X, z, y_hat, n_groups=2))).backward()
    assert classifier.weight.grad.abs().sum() > 0 and classifier.bias.grad.abs().sum() > 0
    if label_coding == "pm1":
        assert set(code_labels(torch.tensor([0, 1]), label_coding).tolist()) == {-1.0, 1.0}
        if robust_input_mode == "probability":
            assert y_hat.min() >= -1 and y_hat.max() <= 1 and y_hat.min() < 0
    # and a short fit (reweighting included) runs
    model = FRTrainTrainer(epochs=60, warmup=20, reweight_every=10, robust_input=robust_input_mode,
                           label_coding=label_coding, reweight_loss=reweight_loss).fit(
        synthetic["poisoned"], validation=synthetic["val"])
    assert np.all(np.isfinite(model.predict_proba(synthetic["test"][0])))
    assert model.details.robustness_scores.shape == (N_TRAIN,)
    assert np.all((model.details.example_weights > 0) & (model.details.example_weights <= 1))


def test_unknown_convention_is_a_clear_error(synthetic):
    for kw in ({"robust_input": "raw"}, {"label_coding": "+-1"}, {"reweight_loss": "total"}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            FRTrainTrainer(epochs=5, **kw).fit(synthetic["poisoned"], validation=synthetic["val"])


def test_reweight_false_keeps_every_weight_at_one(synthetic):
    kwargs = dict(lambda_f=0.0, lambda_r=0.4, lr_robust=0.05, epochs=400, warmup=100)
    off = FRTrainTrainer(reweight=False, **kwargs).fit(synthetic["poisoned"], validation=synthetic["val"])
    np.testing.assert_array_equal(off.details.example_weights, 1.0)
    on = FRTrainTrainer(**kwargs).fit(synthetic["poisoned"], validation=synthetic["val"])
    assert (on.details.example_weights < 1).any()
