import numpy as np
import pytest

from fairal.datasets import load_adult
from fairal.strategies import GroupAwareRandomSampling, make_strategy
from fairal.trainers import ERMTrainer


class ConstantModel:
    """Predicts 0 for every row: its accuracy on a group is that group's share of y = 0."""

    def predict(self, X):
        return np.zeros(len(X), dtype=np.int64)


@pytest.fixture(scope="module")
def setting():
    adult = load_adult()
    order = np.random.default_rng(0).permutation(len(adult))
    labeled, unlabeled = order[:300], np.sort(order[300:1300])
    model = ERMTrainer().fit(adult.subset(labeled))
    return adult, model, labeled, unlabeled


def query(strategy, setting, n, model=None):
    adult, trained, labeled, unlabeled = setting
    return strategy.query(model or trained, adult.X, unlabeled, labeled, adult.y[labeled], n, groups=adult.group)


def test_registered_by_name():
    assert isinstance(make_strategy("group_random", random_state=0), GroupAwareRandomSampling)


def test_chooses_the_group_with_lower_labeled_accuracy(setting):
    # Always predicting "<=50K" is right more often for women (base rate .11 vs .31).
    strategy = GroupAwareRandomSampling(random_state=0)
    query(strategy, setting, 1, model=ConstantModel())
    assert strategy.chosen_group_ == "Male"
    assert strategy.group_accuracy_["Male"] < strategy.group_accuracy_["Female"]


def test_chosen_group_matches_the_trained_models_accuracy(setting):
    adult, model, labeled, _ = setting
    strategy = GroupAwareRandomSampling(random_state=0)
    query(strategy, setting, 1)
    correct = model.predict(adult.X[labeled]) == adult.y[labeled]
    accuracy = {g: correct[adult.group[labeled] == g].mean() for g in ("Female", "Male")}
    assert strategy.chosen_group_ == min(accuracy, key=accuracy.get)


def test_worse_group_first_then_the_rest(setting):
    adult, _, _, unlabeled = setting
    strategy = GroupAwareRandomSampling(random_state=0)
    order, _ = strategy.rank(ConstantModel(), adult.X, unlabeled, setting[2], adult.y[setting[2]], groups=adult.group)
    n_men = int((adult.group[unlabeled] == "Male").sum())
    assert np.all(adult.group[order[:n_men]] == "Male")
    assert np.all(adult.group[order[n_men:]] == "Female")
    np.testing.assert_array_equal(np.sort(order), unlabeled)


def test_query_beyond_the_group_fills_from_the_rest(setting):
    adult, _, _, unlabeled = setting
    n_men = int((adult.group[unlabeled] == "Male").sum())
    chosen = query(GroupAwareRandomSampling(random_state=0), setting, n_men + 5, model=ConstantModel())
    assert len(set(chosen)) == n_men + 5 and set(chosen) <= set(unlabeled)
    assert (adult.group[chosen] == "Female").sum() == 5


def test_scores_mark_the_group(setting):
    adult, _, labeled, unlabeled = setting
    order, scores = GroupAwareRandomSampling(random_state=0).rank(ConstantModel(), adult.X, unlabeled, labeled,
                                                                  adult.y[labeled], groups=adult.group)
    in_group = adult.group[order] == "Male"
    assert np.all((scores[in_group] >= 1) & (scores[in_group] < 2))
    assert np.all((scores[~in_group] >= 0) & (scores[~in_group] < 1))


def test_seeded_and_random_within_the_group(setting):
    first = query(GroupAwareRandomSampling(random_state=7), setting, 20)
    again = query(GroupAwareRandomSampling(random_state=7), setting, 20)
    other = query(GroupAwareRandomSampling(random_state=8), setting, 20)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_needs_groups(setting):
    adult, model, labeled, unlabeled = setting
    with pytest.raises(ValueError, match=r"needs the sensitive group of every row \(groups=...\)"):
        GroupAwareRandomSampling().query(model, adult.X, unlabeled, labeled, adult.y[labeled], 1)


@pytest.mark.parametrize("labeled", [None, []])
def test_needs_labeled_examples(setting, labeled):
    adult, model, _, unlabeled = setting
    y = None if labeled is None else []
    with pytest.raises(ValueError, match="needs labeled examples .* to tell which group the model serves worse"):
        GroupAwareRandomSampling().query(model, adult.X, unlabeled, labeled, y, 1, groups=adult.group)
