"""The contract every registered query strategy keeps, checked on real Adult rows (as
scikit-activeml's template tests check every query strategy)."""

import numpy as np
import pytest

from fairal.datasets import load_adult
from fairal.strategies import (
    OFFLINE_ONLY,
    STRATEGIES,
    EmptyPoolError,
    PoolExhaustedError,
    QueryStrategy,
    Ranking,
    make_strategy,
)
from fairal.trainers import ERMTrainer

#: Strategies whose order depends on ``random_state`` (a seeded draw); the others are fixed by the data.
RANDOMISED = {"random", "group_random", "panda"}
#: Exact FAL refits twice per candidate: a tiny pool keeps it fast.
POOL_SIZE = {"fal_exact": 30}


@pytest.fixture(scope="module")
def adult():
    return load_adult()


@pytest.fixture(scope="module")
def setting(adult):
    """100 labeled Adult rows (both classes, both groups), 300 unlabeled ones, an ERM model."""
    order = np.random.default_rng(0).permutation(len(adult))
    labeled, pool = order[:100], np.sort(order[100:400])
    assert set(adult.y[labeled]) == {0, 1} and set(adult.group[labeled]) == {"Female", "Male"}
    return labeled, pool, ERMTrainer().fit(adult.subset(labeled))


class Case:
    """One strategy on the shared setting; ``model`` is None where the strategy says it needs none."""

    def __init__(self, name, adult, setting):
        self.name, self.adult = name, adult
        self.labeled, pool, model = setting
        self.pool = pool[:POOL_SIZE.get(name, len(pool))]
        self.model = model if STRATEGIES[name].needs_model else None

    def rank(self, random_state=0, pool=None, model="default"):
        return make_strategy(self.name, random_state=random_state).rank(
            self.model if model == "default" else model, self.adult.X, self.pool if pool is None else pool,
            self.labeled, self.adult.y[self.labeled], groups=self.adult.group)

    def query(self, n, random_state=0, pool=None, model="default"):
        return make_strategy(self.name, random_state=random_state).query(
            self.model if model == "default" else model, self.adult.X, self.pool if pool is None else pool,
            self.labeled, self.adult.y[self.labeled], n, groups=self.adult.group)


@pytest.fixture(scope="module", params=sorted(STRATEGIES))
def case(request, adult, setting):
    return Case(request.param, adult, setting)


@pytest.fixture(scope="module")
def ranking(case):
    return case.rank()


def test_registry_names_and_flags():
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, QueryStrategy) and cls.name == name
        assert all(isinstance(getattr(cls, flag), bool) for flag in ("needs_model", "adaptive", "offline_only"))
    assert OFFLINE_ONLY == {"fal_exact"} and RANDOMISED <= set(STRATEGIES)


def test_query_picks_distinct_unlabeled_positions(case, ranking):
    chosen = case.query(10)
    assert chosen.dtype == np.int64 and len(chosen) == 10 and len(set(chosen.tolist())) == 10
    assert set(chosen.tolist()) <= set(case.pool.tolist())
    np.testing.assert_array_equal(chosen, ranking.order[:10])


def test_rank_covers_the_pool_once_with_scores_sorted_alike(case, ranking):
    assert isinstance(ranking, Ranking)
    order, scores = ranking
    assert order.dtype == np.int64 and scores.dtype == np.float64
    assert order.shape == scores.shape == case.pool.shape
    np.testing.assert_array_equal(np.sort(order), case.pool)
    assert np.isfinite(scores).all() and np.all(np.diff(scores) <= 0)


def test_scores_belong_to_their_items(case, ranking):
    """A strategy fixed by the data gives each item the same score whatever order the pool comes in."""
    if case.name in RANDOMISED:
        pytest.skip("a seeded draw is made in pool order, so a shuffled pool gets other draws")
    shuffled = case.rank(pool=np.random.default_rng(1).permutation(case.pool))
    score_of = dict(zip(ranking.order.tolist(), ranking.scores))
    np.testing.assert_allclose([score_of[p] for p in shuffled.order.tolist()], shuffled.scores, atol=1e-9)


def test_seeded(case, ranking):
    again, other = case.rank(random_state=0), case.rank(random_state=1)
    np.testing.assert_array_equal(again.order, ranking.order)
    np.testing.assert_array_equal(again.scores, ranking.scores)
    assert np.array_equal(other.order, ranking.order) != (case.name in RANDOMISED)


def test_bad_requests_are_refused(case):
    with pytest.raises(ValueError, match="n must be at least 1"):
        case.query(0)
    with pytest.raises(PoolExhaustedError, match=f"{len(case.pool)} available / {len(case.pool) + 1} requested"):
        case.query(len(case.pool) + 1)
    empty = np.array([], dtype=np.int64)
    with pytest.raises(EmptyPoolError):
        case.query(1, pool=empty)
    with pytest.raises(EmptyPoolError):
        case.rank(pool=empty)
    if STRATEGIES[case.name].needs_model:
        with pytest.raises(ValueError, match="needs a trained model"):
            case.rank(model=None)
