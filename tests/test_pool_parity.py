"""``pool_parity``: demographic parity measured on the pool, so that it holds where the model is used.

The data are real (Adult, COMPAS). The labeled rows are drawn the way an active-learning strategy
draws them: unrepresentatively (mostly negatives), which is what made parity measured on the
labels fail to carry over.
"""

import numpy as np
import pytest

from fairal import metrics
from fairal.datasets import load, load_compas
from fairal.trainers import USES_POOL, make_trainer, training
from fairal.trainers.models import FittedModel
from fairal.trainers.pool_parity import parity_on_pool


@pytest.fixture(scope="module")
def adult():
    data = load("adult", sensitive="sex")
    rows = np.random.default_rng(0).permutation(len(data))
    pool, test = rows[:12_000], rows[12_000:22_000]
    # A skewed sample of 450 labels, as a query strategy picks them: 85% negatives.
    negatives, positives = pool[data.y[pool] == 0], pool[data.y[pool] == 1]
    labeled = np.concatenate([negatives[:380], positives[:70]])
    return data, labeled, pool, test


def _dp(model, data, rows):
    return metrics.evaluate(data.y[rows], model.predict(data.X[rows]),
                            sensitive_features=data.group[rows])["demographic_parity_to_overall"]


def test_parity_held_on_the_pool_carries_over_to_the_test_set_where_parity_on_the_labels_does_not(adult):
    data, labeled, pool, test = adult
    train = data.X[labeled], data.y[labeled], data.group[labeled]
    plain = make_trainer("erm").fit(train)
    on_labels = make_trainer("fairlearn", difference_bound=0.03).fit(train)
    on_pool = make_trainer("pool_parity", difference_bound=0.03).fit(train, pool=(data.X[pool], data.group[pool]))
    assert on_pool.info["reference"] == "pool" and on_pool.info["reached"]
    assert on_pool.info["pool_dp_after"] <= 0.03 < on_pool.info["pool_dp_before"]
    assert _dp(on_pool, data, pool) <= 0.03
    # The test set is another sample of the same population: it keeps most of the pool's parity.
    assert _dp(on_pool, data, test) <= 0.05 < 0.08 < _dp(plain, data, test)
    assert _dp(on_labels, data, test) > 0.06  # fair on the skewed labels, not on the population


def test_the_model_is_one_logistic_regression_that_predicts_from_the_features_and_reloads(adult):
    data, labeled, pool, test = adult
    model = make_trainer("pool_parity").fit((data.X[labeled], data.y[labeled], data.group[labeled]),
                                            pool=(data.X[pool], data.group[pool]))
    assert model.architecture["kind"] == "logistic"
    restored = FittedModel.from_bytes(model.to_bytes(), device="cpu")
    np.testing.assert_array_equal(restored.predict(data.X[test]), model.predict(data.X[test]))


def test_the_shift_is_no_larger_than_parity_needs(adult):
    data, labeled, pool, _ = adult
    train = data.X[labeled], data.y[labeled], data.group[labeled]
    loose = make_trainer("pool_parity", difference_bound=0.08).fit(train, pool=(data.X[pool], data.group[pool]))
    tight = make_trainer("pool_parity", difference_bound=0.0).fit(train, pool=(data.X[pool], data.group[pool]))
    assert abs(loose.info["shift"][0]) < abs(tight.info["shift"][0])
    assert tight.info["pool_dp_after"] <= 0.005 and loose.info["pool_dp_after"] <= 0.08


def test_objectives_choose_different_thresholds_on_compas():
    """COMPAS has 45% positives: the F1-best threshold calls most people positive; without a
    parity bound the accuracy-best one is the model's own (probability 0.5)."""
    data = load_compas()
    rows = np.random.default_rng(1).permutation(len(data))
    train, pool = data.subset(rows[:400]), (data.X[rows[400:3400]], data.group[rows[400:3400]])
    own_rate = make_trainer("erm").fit(train).predict(pool[0]).mean()
    unbounded = {objective: make_trainer("pool_parity", objective=objective, difference_bound=0.99).fit(train, pool=pool)
                 for objective in ("f1", "accuracy")}
    assert unbounded["accuracy"].info["shift"] == [0.0]
    assert abs(unbounded["accuracy"].info["positive_rate"] - own_rate) < 0.01
    assert unbounded["f1"].info["positive_rate"] > own_rate + 0.2
    for objective in ("f1", "accuracy"):
        bounded = make_trainer("pool_parity", objective=objective).fit(train, pool=pool)
        assert bounded.info["reached"] and bounded.info["pool_dp_after"] <= 0.03


def test_more_than_two_groups_are_brought_within_the_bound():
    data = load("adult", sensitive="race")
    rows = np.random.default_rng(2).permutation(len(data))
    train, pool = rows[:600], rows[600:12_600]
    groups = np.unique(data.group[pool])
    assert len(groups) > 2
    model = make_trainer("pool_parity", difference_bound=0.05).fit(
        (data.X[train], data.y[train], data.group[train]), pool=(data.X[pool], data.group[pool]))
    assert model.info["reached"] and len(model.info["shift"]) == len(groups)
    assert _dp(model, data, pool) <= 0.05 + 1e-9


def test_one_group_needs_no_shift():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 4))
    y = (X[:, 0] + rng.normal(scale=0.5, size=500) > 0).astype(int)
    weight, bias, info = parity_on_pool(np.array([1.0, 0, 0, 0]), 0.0, X, np.zeros(500), difference_bound=0.0)
    assert info["reached"] and info["shift"] == [0.0] and info["pool_dp_after"] == 0.0
    np.testing.assert_array_equal(weight, [1.0, 0, 0, 0])
    assert 0.3 < ((X @ weight + bias) > 0).mean() < 0.8 and y.mean() > 0.3


def test_without_a_pool_the_training_rows_are_the_reference(adult):
    data, labeled, _, _ = adult
    model = make_trainer("pool_parity").fit((data.X[labeled], data.y[labeled], data.group[labeled]))
    assert model.info["reference"] == "training rows" and model.info["pool_rows"] == len(labeled)
    with pytest.raises(ValueError, match="groups"):
        make_trainer("pool_parity").fit((data.X[labeled], data.y[labeled]))


def test_bad_pools_are_refused_with_the_reason(adult):
    data, labeled, pool, _ = adult
    train = data.X[labeled], data.y[labeled], data.group[labeled]
    with pytest.raises(ValueError, match="features"):
        make_trainer("pool_parity").fit(train, pool=(data.X[pool][:, :5], data.group[pool]))
    with pytest.raises(ValueError, match="one group per row"):
        make_trainer("pool_parity").fit(train, pool=(data.X[pool], data.group[pool][:10]))
    with pytest.raises(TypeError, match="pool"):
        make_trainer("pool_parity").fit(train, pool=data.X[pool])


def test_a_large_pool_is_subsampled_reproducibly(adult):
    data, labeled, pool, test = adult
    train = data.X[labeled], data.y[labeled], data.group[labeled]
    first, second = (make_trainer("pool_parity", max_pool_rows=3000).fit(train, pool=(data.X[pool], data.group[pool]))
                     for _ in range(2))
    assert first.info["pool_rows"] == 3000
    np.testing.assert_array_equal(first.predict_proba(data.X[test]), second.predict_proba(data.X[test]))


def test_the_training_step_hands_the_pool_only_to_trainers_that_read_it(adult):
    data, labeled, pool, test = adult
    train, test_arrays = (data.X[labeled], data.y[labeled], data.group[labeled]), (
        data.X[test], data.y[test], data.group[test])
    assert USES_POOL == {"pool_parity"}
    fitted = training.fit_and_evaluate("pool_parity", train, test_arrays, pool=(data.X[pool], data.group[pool]))
    assert fitted.model.info["reference"] == "pool" and fitted.metrics["demographic_parity_to_overall"] <= 0.05
    plain = training.fit_and_evaluate("erm", train, test_arrays, pool=(data.X[pool], data.group[pool]))  # ignored
    assert plain.metrics["demographic_parity_to_overall"] > 0.08


def test_a_project_trains_pool_parity_on_its_whole_pool(store):
    from fairal.projects import ProjectSettings, create_project, open_project

    pid = create_project(store, ProjectSettings(name="german", dataset="german", budget=30, n_initial=20,
                                                trainers=("pool_parity", "erm")))
    project = open_project(store, pid)
    step = project.train_step(store, "pool_parity")
    assert step.model.info["reference"] == "pool" and step.model.info["pool_rows"] == len(project.pool)
    assert step.model.info["pool_dp_after"] <= 0.03
    assert store.curve_frame(pid)["trainer"].tolist().count("pool_parity") >= 1


def test_a_projects_parity_constraint_reaches_the_trainers_that_bound_parity(store):
    from fairal.projects import ProjectSettings, create_project, open_project

    pid = create_project(store, ProjectSettings(name="german", dataset="german", budget=30, n_initial=20,
                                                trainers=("pool_parity", "fairlearn", "erm"),
                                                metric="demographic_parity_to_overall", threshold=0.02))
    project = open_project(store, pid)
    parity = project.train_step(store, "pool_parity").model
    assert parity.info["difference_bound"] == pytest.approx(0.015) and parity.info["pool_dp_after"] <= 0.015
    assert project.train_step(store, "fairlearn").model.architecture["difference_bound"] == pytest.approx(0.02)


def test_parity_params_follow_the_projects_metric():
    assert training.parity_params("fairlearn", "demographic_parity_to_overall", 0.04) == {"difference_bound": 0.04}
    # two groups each within rho/2 of the overall rate are within rho of each other
    assert training.parity_params("fairlearn", "demographic_parity_difference", 0.04) == {"difference_bound": 0.02}
    assert training.parity_params("pool_parity", "demographic_parity_difference", 0.04) == {
        "difference_bound": pytest.approx(0.015)}
    assert training.parity_params("pool_parity", "error_rate_balance", 0.04) == {}  # another constraint: defaults
    assert training.parity_params("erm", "demographic_parity_to_overall", 0.04) == {}
