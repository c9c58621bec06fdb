"""fairal.crowd_models (crowd-kit's models, learning from crowds) and fairal.crowd_simulation on real data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from fairal import crowd
from fairal.crowd import CrowdDataError
from fairal.crowd_models import (
    C_GRID,
    CROWDKIT_AGGREGATORS,
    MIN_GOLD,
    crowdkit_aggregate,
    fit_difficulty_learning_from_crowds,
    fit_learning_from_crowds,
    uncertain_items,
)
from fairal.crowd_simulation import TABLE6_CROWDS, reference_scores, simulate_feature_crowd


@pytest.fixture(scope="module")
def compas():
    from fairal.datasets import load_compas

    data = load_compas(sensitive="race")
    scores = reference_scores(data.X, data.y)
    rows = np.random.default_rng(0).choice(len(data), size=600, replace=False)
    ids = data.ids[rows].astype(str)
    return (pd.Series(data.y[rows], index=ids), pd.Series(scores[rows], index=ids),
            pd.DataFrame(data.X[rows], index=ids), float(((scores > 0) == data.y).mean()))


def accuracy(labels: pd.DataFrame, truth: pd.Series) -> float:
    return float((labels["label"].reindex(truth.index) == truth).mean())


# --- crowd-kit models --------------------------------------------------------------


DIRECT = {
    "glad": lambda a: a.GLAD(n_iter=100, tol=1e-5),
    "one_coin_dawid_skene": lambda a: a.OneCoinDawidSkene(n_iter=100, tol=1e-5),
    "mace": lambda a: a.MACE(n_restarts=2, n_iter=50, random_state=0),
    "mmsr": lambda a: a.MMSR(random_state=0),
}


@pytest.mark.parametrize("method", [
    "one_coin_dawid_skene", "mmsr",
    pytest.param("glad", marks=pytest.mark.slow),  # GLAD takes 2-20 s even on 240 answers here
    pytest.param("mace", marks=pytest.mark.slow),
])
def test_crowdkit_wrappers_give_crowdkits_own_labels(compas, method):
    from crowdkit import aggregation

    truth = compas[0].iloc[:80]
    answers = crowd.simulate_crowd(truth, n_workers=20, answers_per_item=3, scale="binary",
                                   worker_accuracy=(0.55, 0.9), seed=1)
    ordered = answers.sort_values(["item_id", "position"], kind="stable")  # the wrappers' row order (MACE, M-MSR)
    data = ordered.rename(columns={"item_id": "task", "worker_id": "worker", "answer": "label"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = DIRECT[method](aggregation).fit_predict(data)
    ours = crowdkit_aggregate(answers, method, scale="binary")
    assert list(ours.columns) == ["label", "n_answers", "posterior", "confidence", "tied"]
    decided = ~ours["tied"]
    assert (ours.loc[decided, "label"] == expected.reindex(ours.index)[decided].astype(int)).all()
    assert ours["confidence"].between(0.5, 1).all()


def test_dawid_skene_on_four_classes_adds_the_positive_classes_and_needs_the_scale(compas):
    from crowdkit.aggregation import DawidSkene

    truth = compas[0].iloc[:150]
    answers = crowd.simulate_crowd(truth, n_workers=20, answers_per_item=5, scale="confidence4",
                                   worker_accuracy=(0.6, 0.9), seed=2)
    result = crowdkit_aggregate(answers, "dawid_skene_4", scale="confidence4")
    ordered = answers.sort_values(["item_id", "position"], kind="stable")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probas = DawidSkene(n_iter=100, tol=1e-5).fit(
            ordered.rename(columns={"item_id": "task", "worker_id": "worker", "answer": "label"})).probas_
    assert probas.shape[1] == 4  # four answer classes, not two
    np.testing.assert_allclose(result["posterior"], (probas[3] + probas[4]).reindex(result.index))
    assert accuracy(result, truth) > 0.75
    with pytest.raises(CrowdDataError, match="dawid_skene_4 needs answers on the confidence4 scale"):
        crowdkit_aggregate(answers.assign(answer=(answers["answer"] >= 3).astype(int)), "dawid_skene_4",
                           scale="binary")


def test_every_aggregator_is_reachable_through_aggregate(compas):
    truth, _, features, _ = compas
    truth = truth.iloc[:60]
    answers = crowd.simulate_crowd(truth, n_workers=15, answers_per_item=3, scale="confidence4", seed=3)
    for method in crowd.applicable_aggregators("confidence4", features=True, quick=True):  # GLAD, MACE above
        result = crowd.aggregate(answers, method, scale="confidence4", features=features)
        assert set(result.index) == set(truth.index) and result["label"].isin([0, 1]).all(), method
    assert set(CROWDKIT_AGGREGATORS) < set(crowd.AGGREGATORS)
    assert "dawid_skene_4" not in crowd.applicable_aggregators("binary", features=True)
    with pytest.raises(CrowdDataError, match="learning_from_crowds needs the items' features"):
        crowd.aggregate(answers, "learning_from_crowds", scale="confidence4")


# --- learning from crowds ---------------------------------------------------------


def test_learning_from_crowds_beats_the_vote_when_workers_share_mistakes(compas):
    truth, scores, features, _ = compas
    answers = simulate_feature_crowd(truth, scores, n_workers=100, answers_per_item=5, scale="confidence4",
                                     seed=0, **TABLE6_CROWDS["compas"])
    model = fit_learning_from_crowds(answers, features, scale="confidence4")
    vote = accuracy(crowd.majority_vote(answers, scale="confidence4"), truth)
    assert accuracy(model.labels, truth) > vote + 0.02
    assert model.labels["confidence"].between(0.5, 1).all()
    assert model.workers["n_answers"].sum() == len(answers)
    rows = model.workers.filter(like="_given_0").sum(axis=1)
    assert np.allclose(rows, 1)


def test_learning_from_crowds_prior_does_not_read_the_items_own_answers(compas):
    """The classifier's prior for an item is cross-fitted: its own answers (all 'sure yes' or all 'sure no')
    do not move it, where an in-sample fit moved it by about 0.01 and counted those answers twice."""
    truth, scores, features, _ = compas
    answers = simulate_feature_crowd(truth, scores, n_workers=100, answers_per_item=5, scale="confidence4",
                                     seed=0, **TABLE6_CROWDS["compas"])
    moved = {}
    for folds in (0, 5):
        gaps = []
        for item in truth.index[:3]:
            own = answers["item_id"] == item
            priors = [fit_learning_from_crowds(answers.assign(answer=np.where(own, value, answers["answer"])),
                                               features, scale="confidence4", n_iter=1, folds=folds)
                      .labels.loc[item, "classifier"] for value in (4, 1)]
            gaps.append(abs(priors[0] - priors[1]))
        moved[folds] = max(gaps)
    assert moved[5] < 1e-3 < 0.005 < moved[0]


def test_learning_from_crowds_finds_an_always_wrong_worker(compas):
    truth, _, features, _ = compas
    answers = crowd.simulate_crowd(truth, n_workers=12, answers_per_item=4, scale="binary",
                                   worker_accuracy=[0.02] + [0.8] * 11, seed=4)
    model = fit_learning_from_crowds(answers, features, scale="binary")
    assert model.workers.loc["w00", "accuracy"] < 0.1
    assert model.workers.drop("w00")["accuracy"].min() > 0.65
    assert accuracy(model.labels, truth) > accuracy(crowd.majority_vote(answers, scale="binary"), truth)


def test_learning_from_crowds_needs_a_feature_row_for_every_answered_item(compas):
    truth, _, features, _ = compas
    answers = crowd.simulate_crowd(truth.iloc[:20], n_workers=5, answers_per_item=2, scale="binary", seed=0)
    with pytest.raises(CrowdDataError, match="features have no row for 1 answered items"):
        fit_learning_from_crowds(answers, features.drop(truth.index[3]), scale="binary")
    broken = features.copy()
    broken.iloc[features.index.get_loc(truth.index[0]), 0] = np.nan
    with pytest.raises(CrowdDataError, match="NaN"):
        fit_learning_from_crowds(answers, broken, scale="binary")


def test_uncertain_items_are_the_least_sure_first():
    labels = pd.DataFrame({"label": [1, 0, 1], "confidence": [0.95, 0.55, 0.7]}, index=["a", "b", "c"])
    assert list(uncertain_items(labels, min_confidence=0.8)) == ["b", "c"]
    with pytest.raises(CrowdDataError, match="no confidence column"):
        uncertain_items(labels.drop(columns="confidence"))


# --- the feature-aware simulated crowd ------------------------------------------------


def test_feature_crowd_converges_to_the_reference_model_not_to_the_truth(compas):
    truth, scores, _, _ = compas
    shared = simulate_feature_crowd(truth, scores, n_workers=60, answers_per_item=31, scale="binary",
                                    shared_noise=0.0, truth_signal=0.0, worker_noise=(1.0, 1.0),
                                    spammer_share=0.0, seed=0)
    independent = crowd.simulate_crowd(truth, n_workers=60, answers_per_item=31, scale="binary",
                                       worker_accuracy=(0.6, 0.6), seed=0)
    reference = float(((scores > 0).astype(int) == truth).mean())
    assert abs(accuracy(crowd.majority_vote(shared, scale="binary"), truth) - reference) < 0.03
    assert accuracy(crowd.majority_vote(independent, scale="binary"), truth) > 0.85 > reference + 0.1


def test_feature_crowd_is_reproducible_with_partial_answering_and_spammers(compas):
    truth, scores, _, _ = compas
    first, workers = simulate_feature_crowd(truth, scores, n_workers=80, answers_per_item=5, scale="confidence4",
                                            seed=7, return_workers=True)
    again = simulate_feature_crowd(truth, scores.to_numpy(), n_workers=80, answers_per_item=5,
                                   scale="confidence4", seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == list(crowd.ANSWER_COLUMNS) and first["answer"].isin([1, 2, 3, 4]).all()
    assert not first.duplicated(["item_id", "worker_id"]).any()
    per_worker = first.groupby("worker_id").size()
    assert per_worker.max() > 4 * per_worker.median()  # a few busy workers, most answer little
    assert per_worker.max() < len(truth)
    assert workers["spammer"].sum() == 12
    with pytest.raises(CrowdDataError, match="reference_score has no score for 1 items"):
        simulate_feature_crowd(truth, scores.iloc[1:], n_workers=10, answers_per_item=2, scale="binary")


def test_table6_crowd_reproduces_the_papers_compas_accuracy_at_eleven_answers(compas):
    truth, scores, _, _ = compas
    answers = simulate_feature_crowd(truth, scores, n_workers=200, answers_per_item=11, scale="confidence4",
                                     seed=5, **TABLE6_CROWDS["compas"])
    table6 = {1: 0.609, 5: 0.656, 11: 0.667}
    for n, paper in table6.items():  # one seed of 600 items: sd about 0.02, hence the ±0.05
        assert abs(accuracy(crowd.mean_score(answers, max_answers=n), truth) - paper) < 0.05, n


def test_tempered_evidence_moves_the_posterior_towards_the_classifier(compas):
    truth, scores, features, _ = compas
    answers = simulate_feature_crowd(truth, scores, n_workers=100, answers_per_item=11, scale="confidence4",
                                     seed=1, **TABLE6_CROWDS["compas"])
    full = fit_learning_from_crowds(answers, features, scale="confidence4").labels
    tempered = fit_learning_from_crowds(answers, features, scale="confidence4", evidence_weight=0.1).labels
    gap = lambda labels: (labels["posterior"] - labels["classifier"]).abs().mean()  # noqa: E731
    assert gap(tempered) < gap(full) / 2
    with pytest.raises(CrowdDataError, match="evidence_weight must be in"):
        fit_learning_from_crowds(answers, features, scale="confidence4", evidence_weight=0)


# --- learning from crowds with item difficulty -------------------------------------------


@pytest.fixture(scope="module")
def adult_crowd():
    """500 Adult items and 30 quiz items answered 11 times by the Table 6 crowd (reference on 6,000 rows)."""
    from fairal.datasets import load_adult

    data = load_adult(sensitive="sex")
    rows = np.random.default_rng(0).choice(len(data), size=6000, replace=False)
    scores = reference_scores(data.X[rows], data.y[rows])
    ids = data.ids[rows[:530]].astype(str)
    truth = pd.Series(data.y[rows[:530]], index=ids)
    answers = simulate_feature_crowd(truth, scores[:530], n_workers=200, answers_per_item=11,
                                     scale="confidence4", seed=0, **TABLE6_CROWDS["adult"])
    return truth.iloc[:500], truth.iloc[500:], answers, pd.DataFrame(data.X[rows[:530]], index=ids)


def test_difficulty_model_beats_the_vote_and_raykar_where_workers_share_mistakes(adult_crowd):
    items, gold, answers, features = adult_crowd
    model = fit_difficulty_learning_from_crowds(answers, features, scale="confidence4", gold=gold)
    on_items = answers[answers["item_id"].isin(items.index)]
    vote = accuracy(crowd.majority_vote(on_items, scale="confidence4"), items)
    raykar = accuracy(fit_learning_from_crowds(on_items, features, scale="confidence4").labels, items)
    ours = accuracy(model.labels, items)
    assert ours > vote + 0.04 and ours > raykar + 0.04
    assert model.difficulty["n_gold"] == 30 and np.isfinite(model.difficulty["delta_0"])
    assert model.labels["clarity"].mean() < 0.3  # eleven shared answers count for about one to three
    assert model.labels["confidence"].between(0.5, 1).all()


def test_difficulty_model_trusts_the_answers_more_when_errors_are_independent(compas):
    truth, scores, features, _ = compas
    gold = truth.iloc[-40:]
    shared = simulate_feature_crowd(truth, scores, n_workers=100, answers_per_item=11, scale="confidence4",
                                    seed=3, **TABLE6_CROWDS["compas"])
    independent = crowd.simulate_crowd(truth, n_workers=100, answers_per_item=11, scale="confidence4",
                                       worker_accuracy=(0.6, 0.8), seed=3)
    clarity = {name: fit_difficulty_learning_from_crowds(answers, features, scale="confidence4", gold=gold)
               .labels["clarity"].mean() for name, answers in (("shared", shared), ("independent", independent))}
    assert clarity["independent"] > clarity["shared"] + 0.15


def test_difficulty_model_without_quiz_items_counts_each_items_answers_once(compas):
    truth, scores, features, _ = compas
    answers = simulate_feature_crowd(truth.iloc[:100], scores.iloc[:100], n_workers=40, answers_per_item=5,
                                     scale="binary", seed=2, **TABLE6_CROWDS["compas"])
    few = truth.iloc[:MIN_GOLD - 1]
    for gold in (None, few):
        model = fit_difficulty_learning_from_crowds(answers, features, scale="binary", gold=gold)
        assert np.allclose(model.labels["clarity"], 1 / model.labels["n_answers"])
        assert np.isnan(model.difficulty["delta_0"])
    with pytest.raises(CrowdDataError, match="gold labels must be 0 or 1"):
        fit_difficulty_learning_from_crowds(answers, features, scale="binary", gold=few.replace(1, 2))
    via_aggregate = crowd.aggregate(answers, "learning_from_crowds_difficulty", scale="binary", features=features)
    assert list(via_aggregate.columns[:5]) == ["label", "n_answers", "posterior", "confidence", "tied"]
    assert "learning_from_crowds_difficulty" in crowd.applicable_aggregators("binary", features=True, quick=True)
    with pytest.raises(CrowdDataError, match="learning_from_crowds_difficulty needs the items' features"):
        crowd.aggregate(answers, "learning_from_crowds_difficulty", scale="binary")


def test_difficulty_model_builds_a_validation_set_from_a_projects_quiz_items():
    from fairal import auth, clean_set
    from fairal.projects import ProjectSettings, create_project, open_project
    from fairal.store import Store

    with Store(memory=True) as store:
        admin = auth.create_account(store, "root", "correct horse battery", role="admin")
        pid = create_project(store, ProjectSettings(name="compas", dataset="compas", sensitive="race", budget=30,
                                                    n_initial=20, scale="confidence4", gold_rate=0.1))
        project, quiz = open_project(store, pid), store.gold(pid)
        items = store.item_ids(pid, "pool")[:150] + list(quiz)[:MIN_GOLD + 5]
        where = project.positions(items)
        truth = dict(zip(items, project.dataset.y[where].astype(int)))
        scores = reference_scores(project.dataset.X, project.dataset.y)[where]
        answers = simulate_feature_crowd(truth, scores, n_workers=60, answers_per_item=7, scale="confidence4",
                                         seed=0, **TABLE6_CROWDS["compas"])
        buffer = answers[["item_id", "worker_id", "answer"]].to_csv(index=False).encode()
        clean_set.import_crowd_csv(store, pid, buffer, by=admin)
        labels, _, used = clean_set.aggregate_labels(store, pid, method="learning_from_crowds_difficulty")
        assert used == len(answers)  # the quiz items' answers are read ...
        assert not labels.index.isin([str(i) for i in quiz]).any()  # ... but they get no validation label
        assert not np.allclose(labels["clarity"], 1 / labels["n_answers"])  # the clarity was fitted on them
        summary = clean_set.build_validation_set(store, pid, by=admin, method="learning_from_crowds_difficulty")
        assert summary["size"] == 150
        right = sum(store.validation_labels(pid)[i] == truth[i] for i in items[:150])
        clean_set.build_validation_set(store, pid, by=admin, method="majority_vote")
        vote = sum(store.validation_labels(pid)[i] == truth[i] for i in items[:150])
        assert right > vote + 7  # 107 against 90 of 150 when written


def test_reference_scores_do_not_depend_on_the_thread_count():
    """The simulated crowd judges from these scores, so every calibrated figure rests on them: one and two
    BLAS threads gave scores 0.06 apart on Adult while the fit stopped early."""
    from threadpoolctl import threadpool_limits

    from fairal.datasets import load_adult

    data = load_adult(sensitive="sex")
    rows = np.random.default_rng(0).choice(len(data), size=8000, replace=False)
    X, y = data.X[rows], data.y[rows]
    with threadpool_limits(1):
        one = reference_scores(X, y)
    with threadpool_limits(2):
        two = reference_scores(X, y)
    np.testing.assert_allclose(one, two, atol=1e-4)
    assert abs(np.std(one) - 1) < 1e-6 and ((one > 0) == y).mean() > 0.8


def test_difficulty_model_chooses_its_regularisation_from_the_crowd(adult_crowd):
    """C="auto": the classifier's C is the one whose cross-fitted prior best predicts the crowd's own vote
    shares. On a few hundred Adult items with a hundred one-hot columns that is stronger regularisation
    than C = 1, and the labels are no worse for it; an explicit C is kept."""
    items, gold, answers, features = adult_crowd
    auto = fit_difficulty_learning_from_crowds(answers, features, scale="confidence4", gold=gold)
    one = fit_difficulty_learning_from_crowds(answers, features, scale="confidence4", gold=gold, C=1.0)
    assert auto.difficulty["C"] in C_GRID and auto.difficulty["C"] < 1.0 and one.difficulty["C"] == 1.0
    assert auto.classifier.C == auto.difficulty["C"]
    assert accuracy(auto.labels, items) >= accuracy(one.labels, items) - 0.005
