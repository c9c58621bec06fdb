"""The contract every registered trainer keeps, tested from one template on COMPAS.

Each entry of ``TRAINERS`` fits 300 real rows (with 100 clean validation rows
for the trainers that use them) with small epoch counts: class indices of the
right shape, reproducible fits, save / reload, refused parameters, the
validation set it needs, and the typed ``details`` it documents.
"""

import io
import json
from dataclasses import fields
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fairal.datasets import load_compas
from fairal.projects import Project
from fairal.trainers import NEEDS_VALIDATION, TRAINERS, USES_POOL, USES_VALIDATION, Trainer, make_trainer
from fairal.trainers.models import FitDetails, FittedModel, make_model

N_TRAIN, N_VAL, N_TEST = 300, 100, 200

#: Small settings so that every trainer fits in about a second.
FAST = {
    "erm": {},
    "fairlearn": {"max_iter": 10},
    "head": {},
    "forml": {"epochs": 2},
    "frtrain": {"epochs": 200, "warmup": 50, "reweight_every": 10},
    "irw": {"epochs": 2},
    "irwo": {"epochs": 2},
    "cvar": {"epochs": 2},
    "pool_parity": {},
}

#: The ``details`` fields each trainer fills (the rest stay None).
DETAILS = {
    "erm": set(),
    "fairlearn": {"mixture_weights"},
    "head": set(),
    "forml": {"example_weights", "label_trust", "rows"},
    "frtrain": {"example_weights", "robustness_scores", "label_trust"},
    "irw": {"example_weights"},
    "irwo": {"example_weights"},
    "cvar": {"example_weights"},
    "pool_parity": set(),
}

#: Models that cannot be saved safely (fairlearn's mixture holds scikit-learn estimators).
UNSAVED = {"fairlearn"}

#: One refused value per parameter: (trainer, parameter, value).
BAD_PARAMS = [
    ("erm", "C", 0.0), ("erm", "model", "svm"), ("erm", "batch_size", 0),
    ("fairlearn", "constraint", "parity"), ("fairlearn", "difference_bound", -0.1), ("fairlearn", "max_iter", 0),
    ("head", "steps", 0), ("head", "lr", -1.0),
    ("forml", "meta_loss", "accuracy"), ("forml", "epochs", 0), ("forml", "condense", 1.0),
    ("frtrain", "fairness", "parity"), ("frtrain", "epochs", -1), ("frtrain", "lambda_r", -0.1),
    ("irw", "alpha", 0.0), ("irw", "scheme", "batch"), ("irwo", "dbscan_min_samples", 0),
    ("cvar", "alpha", 1.5), ("cvar", "epochs", True),
    ("pool_parity", "difference_bound", -0.1), ("pool_parity", "objective", "auc"), ("pool_parity", "max_pool_rows", 0),
]


@pytest.fixture(scope="module")
def compas():
    data = load_compas()
    rows = np.random.default_rng(0).permutation(len(data))
    train, val, test = np.split(rows[:N_TRAIN + N_VAL + N_TEST], [N_TRAIN, N_TRAIN + N_VAL])
    return {"train": data.subset(train), "val": data.subset(val), "test": data.subset(test)}


def build(name: str, **params):
    return make_trainer(name, **{**FAST[name], **params})


def fit(name: str, compas, **params):
    validation = compas["val"] if TRAINERS[name].uses_validation else None
    return build(name, **params).fit(compas["train"], validation=validation)


@pytest.fixture(scope="module")
def fitted(compas):
    """One fitted model per trainer, shared by the tests that only read it."""
    return {name: fit(name, compas) for name in TRAINERS}


def test_tables_cover_every_trainer():
    assert set(FAST) == set(DETAILS) == set(TRAINERS) == {name for name, _, _ in BAD_PARAMS}


def test_feature_flags_come_from_the_trainer_classes():
    for name, cls in TRAINERS.items():
        assert cls.name == name and isinstance(cls(), Trainer)
    assert NEEDS_VALIDATION == {"frtrain"}
    assert USES_VALIDATION == {"frtrain", "forml"}
    assert USES_POOL == {"pool_parity"}
    assert NEEDS_VALIDATION <= USES_VALIDATION


@pytest.mark.parametrize("name", TRAINERS)
def test_fit_predicts_class_indices(name, fitted, compas):
    model, X = fitted[name], compas["test"].X
    predicted = model.predict(X)
    assert predicted.shape == (N_TEST,) and predicted.dtype == np.int64
    assert set(np.unique(predicted)) <= {0, 1}
    proba = model.predict_proba(X)
    assert proba.shape == (N_TEST, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(predicted, (proba[:, 1] > 0.5).astype(np.int64))


@pytest.mark.parametrize("name", TRAINERS)
def test_same_random_state_same_model(name, compas):
    seed = {"random_state": 5} if hasattr(build(name), "random_state") else {}  # fairlearn, head: deterministic
    first, second = fit(name, compas, **seed), fit(name, compas, **seed)
    np.testing.assert_array_equal(first.predict_proba(compas["test"].X), second.predict_proba(compas["test"].X))


@pytest.mark.parametrize("name", TRAINERS)
def test_model_survives_save_and_reload(name, fitted, compas):
    model, X = fitted[name], compas["test"].X
    if name in UNSAVED:
        assert model.to_bytes() is None
        return
    restored = FittedModel.from_bytes(model.to_bytes(), device="cpu")
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    # same weights, same float32 arithmetic: bit-equal on the CPU; a model fitted on CUDA rounds otherwise
    atol = 1e-12 if getattr(model, "device", torch.device("cpu")).type == "cpu" else 1e-6
    np.testing.assert_allclose(restored.predict_proba(X), model.predict_proba(X), rtol=0, atol=atol)
    assert restored.architecture == model.architecture
    assert all(getattr(restored.details, f.name) is None for f in fields(FitDetails))  # details are not saved


def test_a_model_in_the_stored_file_format_still_loads(compas):
    """The layout databases already hold: a torch file with the architecture as JSON and a state_dict."""
    architecture = {"kind": "mlp", "n_features": compas["test"].X.shape[1], "n_classes": 2, "hidden": [8]}
    torch.manual_seed(0)
    module = make_model("mlp", architecture["n_features"], hidden=(8,))
    buffer = io.BytesIO()
    torch.save({"architecture": json.dumps(architecture), "state_dict": module.state_dict()}, buffer)
    restored = FittedModel.from_bytes(buffer.getvalue(), device="cpu")
    expected = (module(torch.tensor(compas["test"].X)).squeeze(1) > 0).long().numpy()
    np.testing.assert_array_equal(restored.predict(compas["test"].X), expected)


@pytest.mark.parametrize(("name", "param", "value"), BAD_PARAMS)
def test_bad_parameters_are_refused_by_name(name, param, value, compas):
    with pytest.raises(ValueError, match=param):
        fit(name, compas, **{param: value})


@pytest.mark.parametrize("name", TRAINERS)
def test_validation_set_when_needed(name, compas):
    trainer = build(name)
    if name in NEEDS_VALIDATION:
        with pytest.raises(ValueError, match="validation"):
            trainer.fit(compas["train"])
    else:
        assert trainer.fit(compas["train"]).predict(compas["test"].X).shape == (N_TEST,)


@pytest.mark.parametrize("name", TRAINERS)
def test_typed_details_as_documented(name, fitted):
    details = fitted[name].details
    present = {f.name for f in fields(FitDetails) if getattr(details, f.name) is not None}
    assert present == DETAILS[name]
    n_rows = N_TRAIN if details.rows is None else len(details.rows)
    for field in ("example_weights", "robustness_scores", "label_trust"):
        values = getattr(details, field)
        if values is not None:
            assert values.shape == (n_rows,) and np.isfinite(values).all() and (values >= 0).all()
            assert not values.flags.writeable
    if details.rows is not None:  # a subset of the training rows, in order
        assert np.all(np.diff(details.rows) > 0) and 0 <= details.rows[0] and details.rows[-1] < N_TRAIN
    if details.mixture_weights is not None:
        assert details.mixture_weights.sum() == pytest.approx(1.0)


def test_details_say_what_each_trainer_learned(fitted):
    forml, frtrain = fitted["forml"].details, fitted["frtrain"].details
    assert forml.example_weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(forml.label_trust, forml.example_weights * len(forml.example_weights))
    assert ((frtrain.robustness_scores > 0) & (frtrain.robustness_scores < 1)).all()
    np.testing.assert_array_equal(frtrain.label_trust, frtrain.robustness_scores)
    assert ((frtrain.example_weights > 0) & (frtrain.example_weights <= 1)).all()


@pytest.mark.parametrize("name", ["forml", "frtrain", "erm", "irw"])
def test_label_suspicion_reads_label_trust(name, compas):
    """Training rows are the seed, then the labels in order; only labeled items get a score."""
    n_seed = 50
    model = build(name).fit(compas["train"], validation=compas["val"] if name == "frtrain" else None)  # forml holds out
    item_ids = compas["train"].ids[n_seed:]
    labels = dict(zip(item_ids.tolist(), compas["train"].y[n_seed:].tolist()))
    scores = Project.label_suspicion(SimpleNamespace(seed=np.arange(n_seed)), model, labels)
    trust = model.details.label_trust
    if trust is None:
        assert scores == {}
        return
    rows = np.arange(N_TRAIN) if model.details.rows is None else model.details.rows
    expected = {int(item_ids[r - n_seed]): float(v) for r, v in zip(rows, trust) if r >= n_seed}
    assert scores == expected and len(scores) > 0.8 * (N_TRAIN - n_seed)
