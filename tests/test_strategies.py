import numpy as np
import pytest

from fairal.datasets import load_adult
from fairal.strategies import (
    EmptyPoolError,
    EntropySampling,
    MarginSampling,
    PoolExhaustedError,
    RandomSampling,
    make_strategy,
)
from fairal.trainers import ERMTrainer


@pytest.fixture(scope="module")
def setting():
    adult = load_adult()
    rng = np.random.default_rng(1)
    labeled = rng.choice(len(adult), size=200, replace=False)
    unlabeled = np.setdiff1d(np.arange(len(adult)), labeled)[:3000]
    model = ERMTrainer().fit(adult.subset(labeled))
    return adult, model, labeled, unlabeled


@pytest.mark.parametrize("name", ["random", "margin", "entropy"])
def test_query_returns_distinct_unlabeled_positions(setting, name):
    adult, model, labeled, unlabeled = setting
    chosen = make_strategy(name, random_state=0).query(model, adult.X, unlabeled, labeled, adult.y[labeled], 50)
    assert len(chosen) == 50 and len(set(chosen)) == 50
    assert set(chosen) <= set(unlabeled)


def test_margin_picks_the_examples_closest_to_the_boundary(setting):
    adult, model, _, unlabeled = setting
    chosen = MarginSampling().query(model, adult.X, unlabeled, n=10)
    distance = np.abs(model.predict_proba(adult.X[unlabeled])[:, 1] - 0.5)
    assert np.allclose(np.sort(distance)[:10], np.abs(model.predict_proba(adult.X[chosen])[:, 1] - 0.5))


def test_entropy_and_margin_rank_alike_for_two_classes(setting):
    adult, model, _, unlabeled = setting
    by_entropy = EntropySampling().query(model, adult.X, unlabeled, n=100)
    by_margin = MarginSampling().query(model, adult.X, unlabeled, n=100)
    assert len(set(by_entropy) & set(by_margin)) >= 98  # equal up to float ties


def test_rank_returns_the_scores_with_the_order(setting):
    adult, model, _, unlabeled = setting
    order, scores = EntropySampling().rank(model, adult.X, unlabeled)
    assert scores.shape == (len(unlabeled),) and scores.dtype == np.float64
    p = np.clip(model.predict_proba(adult.X[order]), 1e-12, 1.0)
    np.testing.assert_allclose(scores, -(p * np.log(p)).sum(axis=1), atol=1e-9)
    assert np.all(np.diff(scores) <= 0) and scores.max() <= np.log(2) + 1e-9
    np.testing.assert_array_equal(EntropySampling().query(model, adult.X, unlabeled, n=5), order[:5])


def test_random_is_seeded_and_a_permutation(setting):
    adult, _, _, unlabeled = setting
    first = RandomSampling(random_state=7).rank(None, adult.X, unlabeled).order
    again = RandomSampling(random_state=7).rank(None, adult.X, unlabeled).order
    other = RandomSampling(random_state=8).rank(None, adult.X, unlabeled).order
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(np.sort(first), unlabeled)


def test_pool_exhausted_says_how_many(setting):
    adult, model, _, _ = setting
    with pytest.raises(PoolExhaustedError, match="3 available / 10 requested"):
        MarginSampling().query(model, adult.X, [1, 2, 3], n=10)


def test_empty_pool(setting):
    adult, model, _, _ = setting
    with pytest.raises(EmptyPoolError):
        MarginSampling().query(model, adult.X, [], n=1)


def test_model_based_strategy_needs_a_model(setting):
    adult, *_ = setting
    with pytest.raises(ValueError, match="needs a trained model"):
        EntropySampling().query(None, adult.X, [1, 2], n=1)


def test_unknown_strategy_name():
    with pytest.raises(ValueError, match="strategy must be one of"):
        make_strategy("oracle")
