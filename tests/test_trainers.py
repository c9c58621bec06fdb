import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression

from fairal.datasets import load_adult, panda_split
from fairal.trainers import ERMTrainer, Trainer, make_trainer
from fairal.trainers.device import default_device
from fairal.trainers.models import FittedModel, ModelFileError


@pytest.fixture(scope="module")
def adult_sample():
    adult = load_adult()
    rows = np.random.default_rng(0).choice(len(adult), size=3000, replace=False)
    return adult.subset(rows)


def test_erm_is_a_trainer():
    assert isinstance(ERMTrainer(), Trainer)


def test_logistic_matches_sklearn_on_adult(adult_sample):
    ours = ERMTrainer().fit(adult_sample)
    theirs = SklearnLogisticRegression(max_iter=2000).fit(adult_sample.X, adult_sample.y)
    gap = np.abs(ours.predict_proba(adult_sample.X)[:, 1] - theirs.predict_proba(adult_sample.X)[:, 1])
    assert gap.max() < 0.02
    assert (ours.predict(adult_sample.X) == theirs.predict(adult_sample.X)).mean() > 0.995


def test_fit_is_reproducible_with_a_seed(adult_sample):
    first = ERMTrainer("mlp", epochs=2, random_state=3).fit(adult_sample)
    second = ERMTrainer("mlp", epochs=2, random_state=3).fit(adult_sample)
    for a, b in zip(first.module.state_dict().values(), second.module.state_dict().values()):
        assert torch.equal(a, b)


def test_fit_leaves_global_rng_untouched(adult_sample):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ERMTrainer("mlp", epochs=1).fit(adult_sample)
    assert torch.equal(torch.rand(3), expected)


def test_zero_weights_equal_dropping_rows(adult_sample):
    weight = np.ones(len(adult_sample), dtype=np.float32)
    weight[1000:] = 0.0
    # As in scikit-learn, a zero weight removes the row from the objective.
    weighted = ERMTrainer().fit(adult_sample, sample_weight=weight)
    kept = ERMTrainer().fit(adult_sample.subset(np.arange(1000)))
    gap = np.abs(weighted.predict_proba(adult_sample.X) - kept.predict_proba(adult_sample.X)).max()
    assert gap < 5e-3  # scikit-learn itself differs by 9e-4 between the two fits


def test_probabilities_are_valid(adult_sample):
    proba = ERMTrainer().fit(adult_sample).predict_proba(adult_sample.X)
    assert proba.shape == (len(adult_sample), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


def test_mlp_learns_adult(adult_sample):
    split = panda_split(len(adult_sample), seed=0)
    model = ERMTrainer("mlp", epochs=20, random_state=0).fit(adult_sample.subset(split.meta_train),
                                                             validation=adult_sample.subset(split.pool))
    test = adult_sample.subset(split.test)
    assert (model.predict(test.X) == test.y).mean() > 0.8


def test_multiclass_digits():
    from fairal.datasets import load_digits

    digits = load_digits()
    model = ERMTrainer().fit(digits)
    assert model.predict_proba(digits.X).shape == (len(digits), 10)
    assert (model.predict(digits.X) == digits.y).mean() > 0.95


def test_model_bytes_round_trip(adult_sample):
    model = ERMTrainer("mlp", epochs=1, hidden=(8, 4)).fit(adult_sample)
    restored = FittedModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(restored.predict_proba(adult_sample.X), model.predict_proba(adult_sample.X))


@pytest.mark.parametrize("data", [b"", b"not a model", b"PK\x03\x04broken zip"])
def test_corrupt_model_bytes_raise_a_clear_error(data):
    with pytest.raises(ModelFileError, match="not a readable fairal model file"):
        FittedModel.from_bytes(data)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        ((np.zeros((3, 2)), np.zeros(2, dtype=int)), {}, "same number of rows"),
        ((np.zeros((0, 2)), np.zeros(0, dtype=int)), {}, "0 examples"),
        ((np.full((2, 2), np.nan), np.zeros(2, dtype=int)), {}, "NaN"),
        ((np.zeros((2, 2)), np.zeros(2, dtype=int)), {"sample_weight": [1.0]}, "sample_weight must have shape"),
        ("not data", {}, "must be a Dataset"),
    ],
)
def test_bad_training_input_is_named(data, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ERMTrainer().fit(data, **kwargs)


def test_unknown_trainer_name():
    with pytest.raises(ValueError, match="trainer must be one of"):
        make_trainer("svm")


def test_device_override(monkeypatch):
    monkeypatch.setenv("FAIRAL_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.delenv("FAIRAL_DEVICE")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["erm", "forml", "frtrain", "irw", "cvar"])
def test_long_runs_can_show_progress(name, capsys):
    from fairal.datasets import make_synthetic
    from fairal.trainers import make_trainer

    data = make_synthetic(300, seed=0)
    params = {"erm": {"model": "mlp", "epochs": 2}, "forml": {"epochs": 2}, "frtrain": {"epochs": 3, "warmup": 1},
              "irw": {"epochs": 2}, "cvar": {"epochs": 2}}[name]
    trainer = make_trainer(name, progress=True, **params)
    trainer.fit(data, validation=data if name in ("frtrain", "forml") else None)
    assert "epoch" in capsys.readouterr().err
