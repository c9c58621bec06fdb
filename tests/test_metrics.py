"""Tests for fairal.metrics: fairlearn cross-checks on UCI Adult, hand cases, surrogates."""

import math
import warnings
from pathlib import Path

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from fairal import metrics as M
from fairal.metrics import (
    DISPARITY_METRICS,
    HIGHER_IS_BETTER,
    LABELS,
    METRICS,
    accuracy,
    demographic_parity_difference,
    disparate_impact_ratio,
    equalized_odds_difference,
    error_rate_balance,
    evaluate,
    f1,
    intersect_groups,
    max_false_negative_rate,
    soft_demographic_parity,
    soft_equalized_odds,
    true_positive_rate_difference,
    worst_group_accuracy,
)

TOL = 1e-12
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]  # fmt: skip
FEATURES = ["age", "education-num", "hours-per-week", "capital-gain"]


def _adult_path() -> Path:
    local = Path(__file__).resolve().parents[1] / "data" / "adult" / "adult.data.gz"
    return local if local.exists() else Path("/work/shared/data/adult/adult.data.gz")


@pytest.fixture(scope="module")
def adult():
    """Real predictions: logistic regression fit on a random half of Adult, scored on the rest."""
    df = pd.read_csv(
        _adult_path(), header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?"
    ).dropna()
    perm = np.random.default_rng(0).permutation(len(df))
    train, test = df.iloc[perm[: len(df) // 2]], df.iloc[perm[len(df) // 2 :]]
    clf = LogisticRegression(max_iter=1000).fit(train[FEATURES], train["income"] == ">50K")
    return {
        "y_true": (test["income"] == ">50K").astype(int).to_numpy(),
        "y_pred": clf.predict(test[FEATURES]).astype(int),
        "proba": clf.predict_proba(test[FEATURES])[:, 1],
        "test": test.reset_index(drop=True),
    }


def _sf(adult, which):
    test = adult["test"]
    return test[["sex", "race"]] if which == "sex+race" else test[which]


def _fl(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _fl_group_max_fnr(yt, yp, *, sensitive_features, sample_weight=None):
    mf = flm.MetricFrame(
        metrics=flm.false_negative_rate, y_true=yt, y_pred=yp,
        sensitive_features=sensitive_features, sample_params={"sample_weight": sample_weight},
    )  # fmt: skip
    return mf.group_max()


def _fl_group_min_accuracy(yt, yp, *, sensitive_features, sample_weight=None):
    mf = flm.MetricFrame(
        metrics=accuracy_score, y_true=yt, y_pred=yp,
        sensitive_features=sensitive_features, sample_params={"sample_weight": sample_weight},
    )  # fmt: skip
    return mf.group_min()


def _with_method(fn, method):
    return lambda *a, **k: fn(*a, method=method, **k)


# (ours, fairlearn's) pairs that must agree exactly, with and without sample weights.
FAIRLEARN_PAIRS = {
    "demographic_parity_difference": (
        demographic_parity_difference, flm.demographic_parity_difference),
    "demographic_parity_to_overall": (
        _with_method(demographic_parity_difference, "to_overall"),
        _with_method(flm.demographic_parity_difference, "to_overall")),
    "disparate_impact_ratio": (disparate_impact_ratio, flm.demographic_parity_ratio),
    "equalized_odds_difference": (equalized_odds_difference, flm.equalized_odds_difference),
    "equalized_odds_to_overall": (
        _with_method(equalized_odds_difference, "to_overall"),
        _with_method(flm.equalized_odds_difference, "to_overall")),
    "error_rate_balance": (
        error_rate_balance,
        lambda *a, **k: flm.equalized_odds_difference(*a, agg="worst_case", **k)),
    "true_positive_rate_difference": (
        true_positive_rate_difference, flm.true_positive_rate_difference),
    "max_false_negative_rate": (max_false_negative_rate, _fl_group_max_fnr),
    "worst_group_accuracy": (worst_group_accuracy, flm.accuracy_score_group_min),
    "worst_group_accuracy_metricframe": (worst_group_accuracy, _fl_group_min_accuracy),
}  # fmt: skip


# --------------------------------------------------------------------------- #
# Real data: agreement with fairlearn / sklearn
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("which", ["sex", "race", "sex+race"])
@pytest.mark.parametrize("name", list(FAIRLEARN_PAIRS))
def test_matches_fairlearn_on_adult(adult, name, which):
    ours, theirs = FAIRLEARN_PAIRS[name]
    sf = _sf(adult, which)
    expected = _fl(theirs, adult["y_true"], adult["y_pred"], sensitive_features=sf)
    assert ours(adult["y_true"], adult["y_pred"], sensitive_features=sf) == pytest.approx(
        expected, abs=TOL
    )


@pytest.mark.parametrize("which", ["sex", "race"])
@pytest.mark.parametrize("name", list(FAIRLEARN_PAIRS))
def test_matches_fairlearn_on_adult_with_fnlwgt_weights(adult, name, which):
    ours, theirs = FAIRLEARN_PAIRS[name]
    sf, w = _sf(adult, which), adult["test"]["fnlwgt"].to_numpy(dtype=float)
    yt, yp = adult["y_true"], adult["y_pred"]
    expected = _fl(theirs, yt, yp, sensitive_features=sf, sample_weight=w)
    got = ours(yt, yp, sensitive_features=sf, sample_weight=w)
    assert got == pytest.approx(expected, abs=TOL)


def test_race_has_five_groups_so_multigroup_is_exercised(adult):
    assert adult["test"]["race"].nunique() == 5


def test_accuracy_matches_sklearn_on_adult(adult):
    expected = accuracy_score(adult["y_true"], adult["y_pred"])
    assert accuracy(adult["y_true"], adult["y_pred"]) == pytest.approx(expected, abs=TOL)


def test_f1_matches_sklearn_on_adult(adult):
    expected = f1_score(adult["y_true"], adult["y_pred"], zero_division=0)
    assert f1(adult["y_true"], adult["y_pred"]) == pytest.approx(expected, abs=TOL)


def test_weighted_f1_matches_sklearn_on_adult(adult):
    w = adult["test"]["fnlwgt"].to_numpy(dtype=float)
    expected = f1_score(adult["y_true"], adult["y_pred"], sample_weight=w, zero_division=0)
    got = f1(adult["y_true"], adult["y_pred"], sample_weight=w)
    assert got == pytest.approx(expected, abs=TOL)


def test_group_dro_worst_group_matches_fairlearn_on_label_x_sex(adult):
    yt, yp, sex = adult["y_true"], adult["y_pred"], adult["test"]["sex"]
    expected = _fl(
        flm.accuracy_score_group_min, yt, yp,
        sensitive_features=pd.DataFrame({"sex": sex, "y": yt}),
    )  # fmt: skip
    got = worst_group_accuracy(yt, yp, sensitive_features=intersect_groups(sex, yt))
    assert got == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("which", ["sex", "race"])
def test_evaluate_matches_each_metric_function_on_adult(adult, which):
    sf = _sf(adult, which)
    result = evaluate(adult["y_true"], adult["y_pred"], sensitive_features=sf)
    expected = {
        name: fn(adult["y_true"], adult["y_pred"], sensitive_features=sf)
        for name, fn in METRICS.items()
    }
    assert result == expected


def test_evaluate_returns_every_metric_as_float_in_unit_interval(adult):
    result = evaluate(adult["y_true"], adult["y_pred"], sensitive_features=adult["test"]["race"])
    assert list(result) == list(METRICS)
    assert all(type(v) is float and 0.0 <= v <= 1.0 for v in result.values())


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #


def test_metric_names_are_the_database_columns():
    assert list(METRICS) == [
        "accuracy", "f1", "demographic_parity_difference", "demographic_parity_to_overall",
        "equalized_odds_difference", "equalized_odds_to_overall", "error_rate_balance",
        "disparate_impact_ratio", "true_positive_rate_difference", "max_false_negative_rate",
        "worst_group_accuracy",
    ]  # fmt: skip


def test_every_metric_is_either_a_disparity_or_higher_is_better():
    assert set(DISPARITY_METRICS) | HIGHER_IS_BETTER == set(METRICS)
    assert not set(DISPARITY_METRICS) & HIGHER_IS_BETTER


def test_every_metric_has_a_label():
    assert list(LABELS) == list(METRICS)
    assert LABELS["demographic_parity_difference"] == "Demographic parity difference"


def test_all_names_exist():
    assert all(hasattr(M, name) for name in M.__all__)


# --------------------------------------------------------------------------- #
# Hand-computed cases
# --------------------------------------------------------------------------- #

# Selection rates: a = 3/4, b = 1/2, overall = 4/6.
DP_PRED = [1, 1, 1, 0, 1, 0]
DP_GROUPS = ["a", "a", "a", "a", "b", "b"]
# a: y=[1,1,1,1,0,0], y_hat=[1,1,1,1,1,0] -> TPR 1, FPR 1/2, accuracy 5/6
# b: y=[1,1,0,0],     y_hat=[0,0,0,0]     -> TPR 0, FPR 0,   accuracy 1/2
# overall: TPR 4/6, FPR 1/4; TP 4, FP 1, FN 2.
EO_TRUE = [1, 1, 1, 1, 0, 0, 1, 1, 0, 0]
EO_PRED = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
EO_GROUPS = ["a"] * 6 + ["b"] * 4


def test_demographic_parity_between_groups_by_hand():
    got = demographic_parity_difference(None, DP_PRED, sensitive_features=DP_GROUPS)
    assert got == pytest.approx(0.25, abs=TOL)


def test_demographic_parity_to_overall_by_hand():
    got = demographic_parity_difference(
        None, DP_PRED, sensitive_features=DP_GROUPS, method="to_overall"
    )
    assert got == pytest.approx(1 / 6, abs=TOL)


def test_disparate_impact_ratio_by_hand():
    assert disparate_impact_ratio(None, DP_PRED, sensitive_features=DP_GROUPS) == pytest.approx(
        2 / 3, abs=TOL
    )


def test_disparate_impact_ratio_is_one_when_nobody_is_selected():
    assert disparate_impact_ratio([1, 0, 1], [0, 0, 0], sensitive_features=["a", "b", "b"]) == 1.0


def test_fairlearn_ratio_is_nan_when_nobody_is_selected_which_we_define_as_one():
    got = _fl(flm.demographic_parity_ratio, [1, 0, 1], [0, 0, 0], sensitive_features=list("abb"))
    assert math.isnan(got)


def test_demographic_parity_ignores_y_true():
    labels = [0, 1, 1, 0, 1, 1]
    with_labels = demographic_parity_difference(labels, DP_PRED, sensitive_features=DP_GROUPS)
    without = demographic_parity_difference(None, DP_PRED, sensitive_features=DP_GROUPS)
    assert with_labels == without


def test_equalized_odds_between_groups_by_hand():
    assert equalized_odds_difference(EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS) == 1.0


def test_equalized_odds_to_overall_is_pandas_delta_eo_by_hand():
    got = equalized_odds_difference(
        EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS, method="to_overall"
    )
    assert got == pytest.approx(2 / 3, abs=TOL)  # |TPR_b - TPR| = |0 - 4/6|


def test_error_rate_balance_by_hand():
    assert error_rate_balance(EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS) == 1.0


def test_error_rate_balance_takes_the_larger_of_fpr_and_tpr_gaps():
    # TPR equal (1, 1); FPR 1/2 vs 0.
    got = error_rate_balance([1, 0, 0, 1, 0], [1, 1, 0, 1, 0], sensitive_features=list("aaabb"))
    assert got == pytest.approx(0.5, abs=TOL)


def test_true_positive_rate_difference_by_hand():
    assert true_positive_rate_difference(EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS) == 1.0


def test_max_false_negative_rate_by_hand():
    assert max_false_negative_rate(EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS) == 1.0


def test_worst_group_accuracy_by_hand():
    assert worst_group_accuracy(EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS) == 0.5


def test_accuracy_by_hand():
    assert accuracy(EO_TRUE, EO_PRED) == pytest.approx(0.7, abs=TOL)


def test_f1_by_hand():
    assert f1(EO_TRUE, EO_PRED) == pytest.approx(8 / 11, abs=TOL)


def test_f1_is_zero_without_positives_or_positive_predictions():
    assert f1([0, 0, 0], [0, 0, 0]) == 0.0


def test_group_without_positives_gets_tpr_zero_like_fairlearn():
    # a: TPR 1/2; b has no positives -> TPR 0 (sklearn's 0/0 -> 0), so TPRD = 1/2.
    yt, yp, g = [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], list("aaaabb")
    assert true_positive_rate_difference(yt, yp, sensitive_features=g) == 0.5
    assert _fl(flm.true_positive_rate_difference, yt, yp, sensitive_features=g) == 0.5


def test_group_without_positives_gets_fnr_zero_like_fairlearn():
    yt, yp, g = [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], list("aaaabb")
    assert max_false_negative_rate(yt, yp, sensitive_features=g) == 0.5
    assert _fl(_fl_group_max_fnr, yt, yp, sensitive_features=g) == 0.5


def test_single_group_has_no_disparity():
    result = evaluate([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=["x"] * 4)
    gaps = [n for n in DISPARITY_METRICS if n != "max_false_negative_rate"]
    assert [result[n] for n in gaps] == [0.0] * len(gaps)
    assert result["disparate_impact_ratio"] == 1.0


def test_max_false_negative_rate_of_a_single_group_is_its_fnr():
    # maxFNR is a level, not a gap: it does not vanish with one group.
    assert max_false_negative_rate([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=["x"] * 4) == 0.5


def test_sample_weight_counts_an_example_that_many_times():
    weighted = demographic_parity_difference(
        None, [1, 0, 0], sensitive_features=["a", "a", "b"], sample_weight=[3, 1, 1]
    )
    repeated = demographic_parity_difference(
        None, [1, 1, 1, 0, 0], sensitive_features=list("aaaab")
    )
    assert weighted == repeated == 0.75


def test_zero_weight_group_is_dropped():
    got = demographic_parity_difference(
        None, [1, 0, 0], sensitive_features=["a", "a", "b"], sample_weight=[1, 1, 0]
    )
    assert got == 0.0


def test_dataframe_sensitive_features_are_intersected():
    frame = pd.DataFrame({"sex": list("FFMM"), "race": list("xyxx")})
    got = demographic_parity_difference(None, [1, 0, 1, 0], sensitive_features=frame)
    assert got == 1.0  # groups F|x: 1, F|y: 0, M|x: 1/2


def test_intersect_groups_joins_with_a_bar():
    assert intersect_groups(["Female", "Male"], [1, 0]).tolist() == ["Female|1", "Male|0"]


def test_worst_group_accuracy_on_label_x_attribute_groups():
    yt, yp, sex = [1, 1, 0, 0], [1, 0, 0, 0], ["F", "F", "F", "M"]
    # F|1 has accuracy 1/2; F|0 and M|0 have accuracy 1.
    assert worst_group_accuracy(yt, yp, sensitive_features=intersect_groups(sex, yt)) == 0.5


@pytest.mark.parametrize(
    "convert",
    [list, np.asarray, pd.Series, lambda v: np.asarray(v, bool), lambda v: np.asarray(v, float)],
    ids=["list", "ndarray", "series", "bool", "float"],
)
def test_accepts_array_likes(convert):
    got = equalized_odds_difference(
        convert(EO_TRUE), convert(EO_PRED), sensitive_features=pd.Series(EO_GROUPS)
    )
    assert got == 1.0


def test_categorical_sensitive_features_give_the_same_value():
    cat = pd.Series(EO_GROUPS, dtype="category")
    assert evaluate(EO_TRUE, EO_PRED, sensitive_features=cat) == evaluate(
        EO_TRUE, EO_PRED, sensitive_features=EO_GROUPS
    )


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: equalized_odds_difference([1, 0], [1, 0, 1], sensitive_features=["a", "b"]),
            "y_true, y_pred and sensitive_features must have the same length, "
            "got lengths 2, 3 and 2",
        ),
        (
            lambda: demographic_parity_difference(None, [1, 0], sensitive_features=["a"]),
            "y_pred and sensitive_features must have the same length, got lengths 2 and 1",
        ),
        (
            lambda: accuracy([1, 0], [1, 0], sample_weight=[1.0]),
            "y_true, y_pred and sample_weight must have the same length, got lengths 2, 2 and 1",
        ),
        (
            lambda: evaluate([1, 0, 1], [1, 2, 0.5], sensitive_features=list("abc")),
            "y_pred must contain only the binary labels 0 and 1, got [2.0, 0.5]",
        ),
        (
            lambda: f1([1, 0], ["yes", "no"]),
            "y_pred must contain only the binary labels 0 and 1, got ['yes', 'no']",
        ),
        (
            lambda: f1([-1, 1], [0, 1]),
            "y_true must contain only the binary labels 0 and 1, got [-1]",
        ),
        (
            lambda: demographic_parity_difference(
                None, [1, 0], sensitive_features=["a", "b"], method="overall"
            ),
            "method must be one of 'between_groups' or 'to_overall', got 'overall'",
        ),
        (
            lambda: equalized_odds_difference(
                [1, 0], [1, 0], sensitive_features=["a", "b"], method="worst_case"
            ),
            "method must be one of 'between_groups' or 'to_overall', got 'worst_case'",
        ),
        (lambda: accuracy([], []), "expected at least one example, got 0"),
        (
            lambda: accuracy([1, 0], [1, 0], sample_weight=[1.0, -1.0]),
            "sample_weight must be finite and non-negative, got negative or non-finite values",
        ),
        (
            lambda: evaluate([1, 0], [1, 0], sensitive_features=["a", None]),
            "sensitive_features must not contain missing values, got 1",
        ),
        (lambda: intersect_groups(), "intersect_groups needs at least one array, got none"),
        (
            lambda: intersect_groups(["a", "b"], [1]),
            "all arrays must have the same length, got lengths [2, 1]",
        ),
        (
            lambda: soft_demographic_parity(torch.rand(3), torch.tensor([0, 1])),
            "probs and groups must have the same length, got lengths 3 and 2",
        ),
        (
            lambda: soft_equalized_odds(
                torch.rand(2), torch.tensor([0, 1]), torch.tensor([0, 1]), method="max"
            ),
            "method must be one of 'between_groups' or 'to_overall', got 'max'",
        ),
        (
            lambda: soft_equalized_odds(torch.rand(2), torch.tensor([0, 2]), torch.tensor([0, 1])),
            "y_true must contain only the binary labels 0 and 1, got [2]",
        ),
        (
            lambda: soft_demographic_parity(torch.rand(2), torch.tensor([0.0, 1.0])),
            "groups must be integer codes, got dtype torch.float32",
        ),
        (
            lambda: soft_demographic_parity(
                torch.rand(2), torch.tensor([0, 1]), weights=torch.tensor([1.0, -1.0])
            ),
            "weights must be non-negative, got negative values",
        ),
        (
            lambda: soft_demographic_parity(torch.rand(2), torch.tensor([0, 1]), smooth=0.0),
            "smooth must be a positive temperature or None, got 0.0",
        ),
    ],
    ids=[
        "lengths", "lengths-no-y_true", "lengths-weights", "non-binary-y_pred", "string-y_pred",
        "non-binary-y_true", "dp-method", "eo-method", "empty", "negative-weight",
        "missing-group", "intersect-none", "intersect-lengths", "soft-lengths", "soft-method",
        "soft-y_true", "soft-float-groups", "soft-negative-weights", "soft-smooth",
    ],
)  # fmt: skip
def test_invalid_input_is_rejected_with_a_message(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


# --------------------------------------------------------------------------- #
# Torch surrogates
# --------------------------------------------------------------------------- #


def _codes(values) -> torch.Tensor:
    return torch.as_tensor(pd.factorize(np.asarray(values))[0], dtype=torch.int64)


def test_soft_demographic_parity_by_hand():
    probs, groups = torch.tensor([0.9, 0.5, 0.2, 0.4]), torch.tensor([0, 0, 1, 1])
    assert soft_demographic_parity(probs, groups).item() == pytest.approx(0.4)


def test_soft_demographic_parity_to_overall_by_hand():
    probs, groups = torch.tensor([0.9, 0.5, 0.2, 0.4]), torch.tensor([0, 0, 1, 1])
    assert soft_demographic_parity(probs, groups, method="to_overall").item() == pytest.approx(0.2)


def test_soft_demographic_parity_uses_weighted_group_means():
    probs, groups = torch.tensor([0.9, 0.5, 0.2, 0.4]), torch.tensor([0, 0, 1, 1])
    weights = torch.tensor([1.0, 3.0, 1.0, 1.0])  # SR_0 = (0.9 + 1.5) / 4 = 0.6
    assert soft_demographic_parity(probs, groups, weights=weights).item() == pytest.approx(0.3)


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("which", ["sex", "race"])
def test_soft_demographic_parity_equals_hard_metric_on_hard_predictions(adult, which, method):
    sf = adult["test"][which]
    probs = torch.tensor(adult["y_pred"], dtype=torch.float64)
    expected = demographic_parity_difference(
        None, adult["y_pred"], sensitive_features=sf, method=method
    )
    assert soft_demographic_parity(probs, _codes(sf), method=method).item() == pytest.approx(
        expected, abs=TOL
    )


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("which", ["sex", "race"])
def test_soft_equalized_odds_equals_hard_metric_on_hard_predictions(adult, which, method):
    sf, yt = adult["test"][which], adult["y_true"]
    probs = torch.tensor(adult["y_pred"], dtype=torch.float64)
    expected = equalized_odds_difference(yt, adult["y_pred"], sensitive_features=sf, method=method)
    got = soft_equalized_odds(probs, torch.tensor(yt), _codes(sf), method=method)
    assert got.item() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_weighted_soft_equalized_odds_equals_weighted_hard_metric(adult, method):
    sf, yt = adult["test"]["race"], adult["y_true"]
    w = adult["test"]["fnlwgt"].to_numpy(dtype=float)
    probs = torch.tensor(adult["y_pred"], dtype=torch.float64)
    expected = equalized_odds_difference(
        yt, adult["y_pred"], sensitive_features=sf, method=method, sample_weight=w
    )
    got = soft_equalized_odds(
        probs, torch.tensor(yt), _codes(sf), method=method, weights=torch.tensor(w)
    )
    assert got.item() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("surrogate", ["dp", "eo"])
def test_surrogate_gradients_reach_probs_and_weights(adult, surrogate, method):
    probs = torch.tensor(adult["proba"], requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    weights = torch.rand(len(probs), dtype=torch.float64, generator=generator, requires_grad=True)
    groups = _codes(adult["test"]["race"])
    if surrogate == "dp":
        value = soft_demographic_parity(probs, groups, method=method, weights=weights)
    else:
        y = torch.tensor(adult["y_true"])
        value = soft_equalized_odds(probs, y, groups, method=method, weights=weights)
    value.backward()
    for grad in (probs.grad, weights.grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_hard_max_sends_gradient_only_to_the_extreme_groups():
    probs = torch.tensor([0.9, 0.5, 0.2], requires_grad=True)
    soft_demographic_parity(probs, torch.tensor([0, 1, 2])).backward()
    assert probs.grad.tolist() == [1.0, 0.0, -1.0]


def test_smooth_max_sends_gradient_to_every_group():
    probs = torch.tensor([0.9, 0.5, 0.2], requires_grad=True)
    soft_demographic_parity(probs, torch.tensor([0, 1, 2]), smooth=0.1).backward()
    assert (probs.grad != 0).all()


@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_smooth_is_an_upper_bound_that_tends_to_the_exact_value(adult, method):
    probs, y = torch.tensor(adult["proba"]), torch.tensor(adult["y_true"])
    groups = _codes(adult["test"]["race"])
    exact = soft_equalized_odds(probs, y, groups, method=method).item()
    loose = soft_equalized_odds(probs, y, groups, method=method, smooth=0.05).item()
    tight = soft_equalized_odds(probs, y, groups, method=method, smooth=1e-5).item()
    assert loose > exact
    assert tight == pytest.approx(exact, abs=1e-3)


def test_soft_equalized_odds_skips_empty_cells_unlike_the_hard_metric():
    # Group b has no positives: hard EO gives it TPR 0 (gap 1/2); the surrogate skips it.
    yt, yp, g = [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]
    assert equalized_odds_difference(yt, yp, sensitive_features=g) == 0.5
    probs = torch.tensor(yp, dtype=torch.float64)
    soft = soft_equalized_odds(probs, torch.tensor(yt), torch.tensor(g))
    assert soft.item() == 0.0
