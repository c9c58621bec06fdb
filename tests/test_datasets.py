"""fairal.datasets: real data, reference numbers from data/SOURCES.md and the papers."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fairal.datasets import (
    DATA_DIR,
    Dataset,
    DatasetError,
    PandaSplit,
    TrainValidationTestSplit,
    _builtin,
    list_datasets,
    load,
    load_adult,
    load_compas,
    load_csv,
    load_digits,
    load_german,
    make_synthetic,
    panda_split,
    train_validation_test_split,
)

LOADERS = {
    "adult-sex": lambda **kw: load_adult(sensitive="sex", **kw),
    "adult-race": lambda **kw: load_adult(sensitive="race", **kw),
    "compas-race": lambda **kw: load_compas(sensitive="race", **kw),
    "compas-sex": lambda **kw: load_compas(sensitive="sex", **kw),
    "german": lambda **kw: load_german(**kw),
    "synthetic": lambda **kw: make_synthetic(500, **kw),
    "digits": lambda **kw: load_digits(**kw),
}


def rate(ds: Dataset, group: str) -> float:
    return float(ds.base_rates().loc[group, "positive_rate"])


# --------------------------------------------------------------------------- every loader


@pytest.mark.parametrize("key", LOADERS)
def test_arrays_have_the_documented_types_and_shapes(key):
    ds = LOADERS[key]()
    n = len(ds)
    assert ds.X.dtype == np.float32 and ds.X.shape == (n, len(ds.feature_names))
    assert np.isfinite(ds.X).all()
    assert ds.y.dtype == np.int64 and ds.ids.dtype == np.int64 and ds.group.dtype == object
    assert all(isinstance(g, str) for g in ds.group)
    assert len(np.unique(ds.ids)) == n
    assert ds.display.index.name == "id" and (ds.display.index.to_numpy() == ds.ids).all()
    assert len(ds.classes) == ds.y.max() + 1


@pytest.mark.parametrize("key", LOADERS)
def test_display_never_shows_the_label(key):
    ds = LOADERS[key]()
    assert ds.label_name not in ds.display.columns


@pytest.mark.parametrize("key", [k for k in LOADERS if k != "digits"])
def test_display_shows_the_sensitive_attribute(key):
    ds = LOADERS[key]()
    assert ds.sensitive in ds.display.columns


@pytest.mark.parametrize("key", LOADERS)
def test_sensitive_attribute_is_in_X_only_when_asked(key):
    def uses_sensitive(ds):
        return any(f == ds.sensitive or f.startswith(f"{ds.sensitive}=") for f in ds.feature_names)

    assert not uses_sensitive(LOADERS[key]())
    assert uses_sensitive(LOADERS[key](include_sensitive=True))


@pytest.mark.parametrize("key", LOADERS)
def test_arrays_are_read_only(key):
    ds = LOADERS[key]()
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        ds.y[0] = 1


def test_editing_a_loaded_display_does_not_touch_the_cache():
    ds = load_german()
    ds.display.loc[0, "age"] = -1
    assert load_german().display.loc[0, "age"] == 67


def test_second_adult_load_is_fast():
    load_adult()
    start = time.perf_counter()
    load_adult()
    assert time.perf_counter() - start < 0.2


# --------------------------------------------------------------------------- Adult


def test_adult_keeps_45222_rows_after_dropping_question_marks():
    ds = load_adult()
    assert len(ds) == 45_222
    assert not (ds.display == "?").any().any()
    assert "fnlwgt" not in ds.display.columns


def test_adult_base_rates_match_the_reference():
    ds = load_adult()
    assert rate(ds, "overall") == pytest.approx(0.248, abs=5e-4)
    assert rate(ds, "Male") == pytest.approx(0.312, abs=6e-4)  # 0.31248
    assert rate(ds, "Female") == pytest.approx(0.114, abs=5e-4)
    assert ds.classes == ("<=50K", ">50K")


def test_adult_race_keeps_all_five_groups():
    rates = load_adult(sensitive="race").base_rates()
    assert rates["rows"].to_dict() == {
        "Amer-Indian-Eskimo": 435, "Asian-Pac-Islander": 1303, "Black": 4228, "Other": 353,
        "White": 38903, "overall": 45222,
    }  # fmt: skip
    assert rates.loc["Black", "positive_rate"] == pytest.approx(0.126, abs=5e-4)
    assert rates.loc["White", "positive_rate"] == pytest.approx(0.262, abs=5e-4)


def test_adult_ids_are_line_numbers_and_test_rows_start_at_32561():
    ds = load_adult()
    first = ds.display.loc[0]
    assert (first["age"], first["workclass"], first["education"]) == (39, "State-gov", "Bachelors")
    test_row = ds.subset(ds.positions([32561]))  # "25, Private, ..., 11th, ..., Black, Male, ... <=50K."
    assert test_row.display.iloc[0][["age", "education", "race", "sex"]].tolist() == [25, "11th", "Black", "Male"]
    assert test_row.y.tolist() == [0]


def test_adult_test_file_labels_lose_their_trailing_dot():
    ds = load_adult()
    from_test_file = ds.ids >= 32561
    assert from_test_file.sum() == 15_060
    assert ds.y[from_test_file].mean() == pytest.approx(0.246, abs=5e-4)


# --------------------------------------------------------------------------- COMPAS


def test_compas_propublica_filter_keeps_6172_rows():
    assert len(load_compas(sensitive="sex")) == 6172


def test_compas_by_race_keeps_african_american_and_caucasian():
    ds = load_compas(sensitive="race")
    assert len(ds) == 5278
    assert ds.group_names == ("African-American", "Caucasian")
    assert rate(ds, "African-American") == pytest.approx(0.523, abs=5e-4)
    assert rate(ds, "Caucasian") == pytest.approx(0.391, abs=5e-4)


def test_compas_by_sex_rates():
    ds = load_compas(sensitive="sex")
    assert ds.base_rates()["rows"].to_dict() == {"Female": 1175, "Male": 4997, "overall": 6172}
    assert rate(ds, "Female") == pytest.approx(0.351, abs=5e-4)
    assert rate(ds, "Male") == pytest.approx(0.479, abs=5e-4)


def test_compas_features_exclude_leaking_columns():
    names = " ".join(load_compas(sensitive="sex").feature_names)
    for leak in ("decile", "score", "is_recid", "violent", "date", "charge="):
        assert leak not in names


def test_compas_ids_are_the_id_column():
    ds = load_compas()
    row = ds.subset(ds.positions([3]))  # id 3: 34-year-old African-American man, re-arrested
    assert row.display.iloc[0][["age", "race", "sex"]].tolist() == [34, "African-American", "Male"]
    assert row.y.tolist() == [1]
    assert 1 not in ds.ids  # id 1 is "Other" race: kept only with sensitive="sex"
    assert 1 in load_compas(sensitive="sex").ids


# --------------------------------------------------------------------------- German


def test_german_decodes_the_code_book():
    ds = load_german()
    assert len(ds) == 1000 and ds.y.sum() == 700
    first = ds.display.loc[0]  # "A11 6 A34 A43 1169 A65 A75 4 A93 ... 1"
    assert first["personal status and sex"] == "male, single"
    assert first["checking account"] == "< 0 DM"
    assert first["purpose"] == "radio/television"
    assert first["credit amount (DM)"] == 1169
    assert ds.y[0] == 1 and ds.classes == ("bad credit", "good credit")
    assert not ds.display.map(lambda v: isinstance(v, str) and v[:1] == "A" and v[1:].isdigit()).any().any()


def test_german_groups_come_from_status_sex():
    ds = load_german()
    assert ds.base_rates()["rows"].to_dict() == {"female": 310, "male": 690, "overall": 1000}
    assert rate(ds, "female") == pytest.approx(0.648, abs=5e-4)
    assert rate(ds, "male") == pytest.approx(0.723, abs=5e-4)
    assert not any(f.startswith("personal status") for f in ds.feature_names)


# --------------------------------------------------------------------------- synthetic and digits


def test_synthetic_is_deterministic_in_the_seed():
    a, b, c = make_synthetic(300, seed=4), make_synthetic(300, seed=4), make_synthetic(300, seed=5)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.group, b.group) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_synthetic_follows_fr_train_section_4_1():
    ds = make_synthetic(20_000, seed=1)
    x, z = ds.X.astype(float), (ds.group == "z=1").astype(float)
    assert ds.y.sum() == 10_000
    assert x[ds.y == 0].mean(0) == pytest.approx([-2, -2], abs=0.1)
    assert x[ds.y == 1].mean(0) == pytest.approx([2, 2], abs=0.1)
    # p(z=1) = p(x'|y=1) / (p(x'|y=0) + p(x'|y=1)), x' = x rotated by pi/4
    c = s = np.sqrt(0.5)
    rotated = np.column_stack([x[:, 0] * c - x[:, 1] * s, x[:, 0] * s + x[:, 1] * c])
    p1 = multivariate_normal.pdf(rotated, [2, 2], [[5, 1], [1, 5]])
    p0 = multivariate_normal.pdf(rotated, [-2, -2], [[10, 1], [1, 3]])
    p = p1 / (p0 + p1)
    assert z.mean() == pytest.approx(p.mean(), abs=0.01)
    assert z[p > 0.8].mean() > 0.9 and z[p < 0.2].mean() < 0.1
    assert np.corrcoef(z, ds.y)[0, 1] > 0.4


def test_synthetic_include_sensitive_appends_z():
    ds = make_synthetic(100, include_sensitive=True)
    assert ds.feature_names == ["x1", "x2", "z"]
    assert (ds.X[:, 2] == (ds.group == "z=1")).all()


def test_digits_use_the_class_as_group():
    ds = load_digits()
    assert ds.X.shape == (1797, 64) and ds.X.min() == 0 and ds.X.max() == 1
    assert (ds.group.astype(int) == ds.y).all()
    assert ds.group_names == tuple("0123456789") and ds.classes == tuple("0123456789")


# --------------------------------------------------------------------------- Dataset methods


def test_subset_keeps_fields_aligned():
    ds = load_german()
    sub = ds.subset([5, 2, 9])
    assert sub.ids.tolist() == [5, 2, 9]
    assert (sub.X == ds.X[[5, 2, 9]]).all() and (sub.y == ds.y[[5, 2, 9]]).all()
    assert sub.display.index.tolist() == [5, 2, 9] and sub.group.tolist() == ds.group[[5, 2, 9]].tolist()


def test_positions_names_a_missing_id():
    ds = load_compas()
    assert ds.positions(ds.ids[[7, 3]]).tolist() == [7, 3]
    with pytest.raises(KeyError, match="id 1 is not in"):
        ds.positions([3, 1])


def test_group_codes_index_group_names():
    ds = load_adult(sensitive="race")
    assert (np.asarray(ds.group_names, dtype=object)[ds.group_codes] == ds.group).all()


def test_base_rates_shares_sum_to_one():
    rates = load_compas(sensitive="sex").base_rates()
    assert list(rates.columns) == ["rows", "share", "positive_rate"]
    assert rates.drop(index="overall")["share"].sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------- registry and files


def test_load_dispatches_by_name():
    assert load("adult", sensitive="race").sensitive == "race"
    assert len(load("synthetic", n=50, seed=2)) == 50
    assert [d["name"] for d in list_datasets()] == ["adult", "compas", "german", "synthetic", "digits"]


def test_load_unknown_name_lists_the_known_ones():
    with pytest.raises(DatasetError, match="unknown data set 'mnist'; known data sets: 'adult', 'compas'"):
        load("mnist")


def test_unknown_sensitive_option_says_what_is_allowed():
    with pytest.raises(DatasetError, match="sensitive must be one of 'sex' or 'race', got 'age'"):
        load_adult(sensitive="age")


def test_missing_data_file_names_the_path(monkeypatch, tmp_path):
    monkeypatch.setattr(_builtin, "DATA_DIR", tmp_path)
    with pytest.raises(DatasetError, match=f"data file {tmp_path}.*adult.data.gz is missing"):
        _builtin._data_path("adult", "adult.data.gz")


def test_data_dir_holds_the_originals():
    for part in ("adult/adult.data.gz", "adult/adult.test.gz", "compas/compas-scores-two-years.csv.gz",
                 "german/german.data.gz", "SOURCES.md"):  # fmt: skip
        assert (DATA_DIR / part).is_file()


# --------------------------------------------------------------------------- CSV

CSV = b"""person,age,city,approved,gender
10,31,Oslo,yes,f
11,45,Bergen,no,m
12,28,Oslo,yes,f
13,52,Bergen,no,m
14,39,Oslo,no,f
"""


def test_csv_from_a_streamlit_style_upload():
    ds = load_csv(io.BytesIO(CSV), label="approved", sensitive="gender", id_column="person")
    assert ds.ids.tolist() == [10, 11, 12, 13, 14]
    assert ds.y.tolist() == [1, 0, 1, 0, 0] and ds.classes == ("no", "yes")
    assert ds.feature_names == ["age", "city=Bergen", "city=Oslo"]
    assert list(ds.display.columns) == ["age", "city", "gender"] and ds.group_names == ("f", "m")
    assert ds.X[:, 0].mean() == pytest.approx(0, abs=1e-6) and ds.X[:, 0].std() == pytest.approx(1, abs=1e-5)


def test_csv_from_a_path_and_a_text_file(tmp_path):
    path = tmp_path / "loans.csv"
    path.write_bytes(CSV)
    from_path = load_csv(path, label="approved", sensitive="gender", include_sensitive=True)
    from_text = load_csv(io.StringIO(CSV.decode()), label="approved", sensitive="gender")
    assert from_path.name == "loans" and from_path.ids.tolist() == [0, 1, 2, 3, 4]
    assert "gender=f" in from_path.feature_names and "gender=f" not in from_text.feature_names


@pytest.mark.parametrize(
    ("labels", "positive", "expected_y", "expected_classes"),
    [
        (["0", "1", "1"], None, [0, 1, 1], ("0", "1")),
        (["True", "False", "True"], None, [1, 0, 1], ("False", "True")),
        (["good", "bad", "good"], "bad", [0, 1, 0], ("good", "bad")),
        (["a", "b", "c"], "b", [0, 1, 0], ("not b", "b")),
        (["1.0", "0.0", "1.0"], 1.0, [1, 0, 1], ("0", "1")),
    ],
)
def test_csv_label_mapping(labels, positive, expected_y, expected_classes):
    text = "x,g,label\n" + "".join(f"{i},{'ab'[i % 2]},{v}\n" for i, v in enumerate(labels))
    ds = load_csv(io.StringIO(text), label="label", sensitive="g", positive=positive)
    assert ds.y.tolist() == expected_y and ds.classes == expected_classes


def test_csv_drops_rows_without_label_or_group_and_empty_columns(caplog):
    text = b"x,empty,g,y\n1,,a,0\n2,,b,1\n3,,,1\n4,,a,\n5,,b,0\n"
    ds = load_csv(io.BytesIO(text), label="y", sensitive="g")
    assert ds.ids.tolist() == [0, 1, 4] and ds.feature_names == ["x"]
    assert "dropping 2 row(s)" in caplog.text and "empty" in caplog.text


def test_csv_display_columns_always_include_the_sensitive_one():
    ds = load_csv(io.BytesIO(CSV), label="approved", sensitive="gender", display_columns=["city"])
    assert list(ds.display.columns) == ["city", "gender"]
    assert "age" in ds.feature_names


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        (b"", {}, "file is empty"),
        (b"\n\n", {}, "file is empty"),
        (b"x,g,y\n", {}, "file has a header but no rows"),
        ("x,g,y\n1,ä,0\n".encode("latin-1"), {}, r"file is not UTF-8 text \(byte 0xe4"),
        (b'x,g,y\n1,a,0\n2,"b,1\n', {}, "file is not a well-formed CSV"),
        (b"x,g,y\n1,a,0\n2,b,1,9,9\n", {}, "file is not a well-formed CSV"),
        (b"x,g,y\n1,a,0\n", {"label": "target"}, "label column 'target' not found; available columns: 'x', 'g', 'y'"),
        (b"x,g,y\n1,a,0\n", {"sensitive": "sex"}, "sensitive column 'sex' not found; available columns"),
        (b"x,g,y\n1,a,0\n", {"display_columns": ["x", "z"]}, "display column 'z' not found"),
        (b"x,g,y\n1,a,0\n", {"display_columns": ["x", "y"]}, "must not include the label column 'y'"),
        (b"x,g,y\n1,a,0\n", {"id_column": "key"}, "id column 'key' not found"),
        (b"x,g,y\n1,a,0\n2,b,0\n", {}, r"label column 'y' has only one value \('0'\)"),
        (b"x,g,y\n1,a,0\n2,b,1\n3,a,2\n", {}, "label column 'y' has 3 values .*pass positive="),
        (b"x,g,y\n1,a,0\n2,b,1\n", {"positive": "yes"}, "positive='yes' is not a value of label column 'y'"),
        (b"x,g,y\n1,a,0\n2,a,1\n", {}, "sensitive column 'g' has only one group .*at least two groups"),
        (b"x,g,y\n1,a,\n2,b,\n", {}, r"label column 'y' is empty \(every value is missing\)"),
        (b"x,g,y\n1,,0\n2,,1\n", {}, "sensitive column 'g' is empty"),
        (b"x,g,y\n1,a,0\n2,,1\n3,b,\n", {}, r"only 1 row\(s\) have both a label"),
        (b"x,g,y\n1,a,0\n1,b,1\n", {"id_column": "x"}, "id column 'x' has duplicate ids, e.g. 1"),
        (b"k,g,y\nr1,a,0\nr2,b,1\n", {"id_column": "k"}, "id column 'k' must hold integers"),
        (b"k,g,y\n1,a,0\n,b,1\n", {"id_column": "k"}, "id column 'k' has 1 missing values"),
        (b"x,g,y\n1,a,0\n", {"label": "g"}, "label and sensitive must be different columns"),
    ],
)
def test_csv_errors_name_the_problem(content, kwargs, match):
    arguments = {"label": "y", "sensitive": "g", **kwargs}
    with pytest.raises(DatasetError, match=match):
        load_csv(io.BytesIO(content), **arguments)


def test_csv_missing_file_names_the_path(tmp_path):
    with pytest.raises(DatasetError, match="CSV file .*nowhere.csv not found"):
        load_csv(tmp_path / "nowhere.csv", label="y", sensitive="g")


# --------------------------------------------------------------------------- splits


def assert_partition(parts, n):
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64 and len(joined) == n and (np.sort(joined) == np.arange(n)).all()


def test_panda_split_halves_then_halves_again():
    split = panda_split(1001, seed=3)
    assert isinstance(split, PandaSplit)
    assert [len(p) for p in split] == [500, 250, 251]
    assert_partition(split, 1001)


def test_panda_split_is_seeded():
    ds = load_german()
    first, second = panda_split(ds, seed=1), panda_split(ds, seed=1)
    assert all((a == b).all() for a, b in zip(first, second))
    assert not (panda_split(ds, seed=2).meta_train == first.meta_train).all()


def test_train_validation_test_split_sizes_and_seed():
    split = train_validation_test_split(1000, validation=0.1, test=0.2, seed=0)
    assert isinstance(split, TrainValidationTestSplit)
    assert [len(p) for p in split] == [700, 100, 200]
    assert_partition(split, 1000)
    again = train_validation_test_split(1000, seed=0)
    assert all((a == b).all() for a, b in zip(split, again))
    assert not (train_validation_test_split(1000, seed=1).test == split.test).all()


def test_train_validation_test_split_stratifies():
    ds = load_compas(sensitive="sex")
    split = train_validation_test_split(ds, stratify=ds.group, seed=0)
    assert_partition(split, len(ds))
    for part in split:
        assert (ds.group[part] == "Female").mean() == pytest.approx(1175 / 6172, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation": 0}, "validation must be a fraction strictly between 0 and 1, got 0"),
        ({"test": 1.5}, "test must be a fraction strictly between 0 and 1, got 1.5"),
        ({"test": "0.2"}, "test must be a fraction strictly between 0 and 1, got '0.2'"),
        ({"validation": 0.5, "test": 0.5}, r"validation \+ test must be below 1 .*got 0.5 \+ 0.5 = 1"),
        ({"stratify": [0, 1]}, r"stratify must have shape \(100,\)"),
    ],
)
def test_train_validation_test_split_rejects_bad_arguments(kwargs, match):
    with pytest.raises(DatasetError, match=match):
        train_validation_test_split(100, **kwargs)


def test_split_of_too_few_rows_is_refused():
    with pytest.raises(DatasetError, match="2 rows are too few"):
        train_validation_test_split(2)
