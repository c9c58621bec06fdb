"""Issue 13's open / create / delete work: positions without a dict of every id, cheaper dataset
checks, encoding into one array, creation without reading its arrays back, and a deleted project's
kept arrays leaving the disk."""

import numpy as np
import pandas as pd
import pytest

from fairal import project_arrays, projects
from fairal.datasets import Dataset, DatasetError, load_csv, load_german
from fairal.datasets._encode import encode_features
from fairal.errors import ProjectError
from fairal.project_arrays import read_arrays, remove_arrays
from fairal.projects import CsvSource, ProjectSettings, create_project, delete_project, open_project
from fairal.store import Store


def _german_csv(shuffle: bool) -> bytes:
    """German credit as a CSV with an id column; ``shuffle``: rows (and so ids) out of order."""
    german = load_german()
    frame = german.display.copy()
    frame["credit"] = np.array(german.classes)[german.y]
    if shuffle:
        frame = frame.iloc[np.random.default_rng(3).permutation(len(frame))]
    return frame.to_csv().encode()


def _source(shuffle: bool = False) -> CsvSource:
    return CsvSource(data=_german_csv(shuffle), label="credit", sensitive="sex", positive="good credit",
                     id_column="id", filename="german.csv")


def _forget():
    projects._csv_dataset.cache_clear()
    read_arrays.cache_clear()


def _open_kept(store, pid, monkeypatch):
    """open_project from the kept arrays (failing if it parses the CSV)."""
    _forget()
    monkeypatch.setattr(projects, "_csv_dataset", lambda *a: pytest.fail("the CSV was parsed again"))
    project = open_project(store, pid)
    monkeypatch.undo()
    return project


# --------------------------------------------------------------------------- positions


@pytest.mark.parametrize("shuffle", [False, True], ids=["ids in order", "ids out of order"])
def test_positions_find_every_stored_item_whatever_the_order_of_the_ids(tmp_path, shuffle):
    with Store(tmp_path / "fairal.db") as store:
        pid = create_project(store, ProjectSettings(name="p", budget=20, n_initial=20), csv=_source(shuffle))
        _forget()
        project = open_project(store, pid)
        ids = project.dataset.ids
        assert (np.diff(ids) > 0).all() != shuffle
        for role in ("seed", "pool", "test"):
            stored = store.item_ids(pid, role)
            np.testing.assert_array_equal(ids[getattr(project, role)], stored)
        wanted = [int(ids[7]), int(ids[0]), int(ids[-1]), int(ids[7])]  # any order, repeats, both ends
        for given in (wanted, np.array(wanted), dict.fromkeys(wanted, 1).keys()):
            np.testing.assert_array_equal(ids[project.positions(given)], list(given))
        assert project.positions([]).shape == (0,)


def test_an_id_not_in_the_data_is_named(tmp_path):
    with Store(tmp_path / "fairal.db") as store:
        pid = create_project(store, ProjectSettings(name="p", budget=20, n_initial=20), csv=_source(True))
        project = open_project(store, pid)
        beyond = int(project.dataset.ids.max()) + 1
        with pytest.raises(ProjectError, match=f"item {beyond} of project 'p' is not in its dataset"):
            project.positions([int(project.dataset.ids[0]), beyond])
        with pytest.raises(ProjectError, match=r"item -5 .* \(2 items missing\)"):
            project.positions([-5, beyond])


# --------------------------------------------------------------------------- dataset checks


def _german_with(**fields) -> Dataset:
    german = load_german()
    values = dict(name="g", display=german.display, X=german.X, y=german.y, group=german.group, ids=german.ids,
                  feature_names=german.feature_names, label_name=german.label_name, classes=german.classes,
                  sensitive=german.sensitive)
    return Dataset(**{**values, **fields})


def test_repeated_ids_are_refused_in_or_out_of_order():
    ids = load_german().ids
    for repeated in (np.sort(np.r_[ids[:-1], ids[0]]), np.r_[ids[:-1], ids[0]][::-1]):
        with pytest.raises(DatasetError, match="ids must be unique"):
            _german_with(ids=repeated)
    shuffled = np.random.default_rng(0).permutation(ids)
    assert (_german_with(ids=shuffled).ids == shuffled).all()


def test_groups_must_be_text():
    group = load_german().group.copy()
    with pytest.raises(DatasetError, match="group must hold str values"):
        _german_with(group=np.r_[group[:-1], [3]].astype(object))
    numpy_text = np.asarray([np.str_(g) for g in group], dtype=object)  # a str subclass is text
    assert _german_with(group=numpy_text).group_names == load_german().group_names


# --------------------------------------------------------------------------- encoding


def test_encoding_fills_one_float32_array_as_the_documented_rules_say():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 500).astype(float), "job": rng.choice(["b", "a", "c"], 500),
                          "hours": np.full(500, 40.0)})
    frame.loc[[3, 9], "age"] = np.nan
    frame.loc[[4], "job"] = np.nan
    X, names = encode_features(frame, numeric=["age", "hours"], categorical=["job"])
    assert X.dtype == np.float32 and X.shape == (500, 6)
    assert names == ["age", "job=(missing)", "job=a", "job=b", "job=c", "hours"]
    age = frame["age"].to_numpy()
    expected = (age - np.nanmean(age)) / np.nanstd(age)
    np.testing.assert_array_equal(X[:, 0], np.nan_to_num(expected, nan=0.0).astype(np.float32))
    assert (X[[3, 9], 0] == 0).all() and (X[:, 5] == 0).all()  # missing → the mean; constant → 0
    onehot = X[:, 1:5]
    assert (onehot.sum(axis=1) == 1).all() and onehot[4, 0] == 1
    assert (np.array(names[1:5])[onehot.argmax(axis=1)][frame["job"].notna()]
            == ("job=" + frame["job"].dropna())).all()


# --------------------------------------------------------------------------- creation


def test_creation_ranks_with_the_parsed_data_and_opening_gives_the_same_ranking(tmp_path, monkeypatch):
    source = _source(True)
    monkeypatch.setattr(project_arrays, "_read_cached", lambda *a: pytest.fail("creation read its arrays back"))
    with Store(tmp_path / "fairal.db") as store:
        pid = create_project(store, ProjectSettings(name="p", strategy="entropy", trainers=("erm",), budget=20,
                                                    n_initial=20), csv=source)
        monkeypatch.undo()
        _forget()
        first = store.ranking(pid)
        project = _open_kept(store, pid, monkeypatch)
        project.train_step(store, "erm", rerank=True)  # the same fit, from what opening reads
        again = store.ranking(pid)
    assert first is not None and again is not None and again["version"] == first["version"] + 1
    assert first["size"] == len(project.pool)
    np.testing.assert_array_equal(first["item_ids"], again["item_ids"])
    np.testing.assert_array_equal(first["scores"], again["scores"])


# --------------------------------------------------------------------------- deletion


def test_deleting_the_last_project_of_an_upload_removes_its_arrays(tmp_path, monkeypatch):
    source = _source()
    with Store(tmp_path / "fairal.db") as store:
        settings = ProjectSettings(name="first", budget=20, n_initial=20)
        first = create_project(store, settings, csv=source)
        second = create_project(store, ProjectSettings(name="second", budget=20, n_initial=20), csv=source)
        key = store.project(first)["config"]["arrays"]["key"]
        kept = tmp_path / "arrays" / key
        assert kept.is_dir() and store.project(second)["config"]["arrays"]["key"] == key
        projects.archive_project(store, second)
        delete_project(store, first, confirm="first")
        assert kept.is_dir()  # the archived project made from the same upload still reads it
        _forget()
        _open_kept(store, second, monkeypatch)
        delete_project(store, second, confirm="second")
        assert not kept.exists() and list((tmp_path / "arrays").iterdir()) == []
        with pytest.raises(Exception, match="does not exist"):
            store.project(second)


def test_a_project_that_fails_its_first_ranking_leaves_no_arrays(tmp_path, monkeypatch):
    def broken(self, store, **kwargs):
        raise RuntimeError("the first model failed")

    monkeypatch.setattr(projects.Project, "retrain", broken)
    with Store(tmp_path / "fairal.db") as store:
        with pytest.raises(RuntimeError, match="the first model failed"):
            create_project(store, ProjectSettings(name="p", budget=20, n_initial=20), csv=_source())
        assert store.projects(include_archived=True) == []
    assert list((tmp_path / "arrays").iterdir()) == []


def test_remove_arrays_refuses_a_name_it_did_not_make(tmp_path):
    (tmp_path / "keep").mkdir()
    for key in ("../keep", "keep", "", "0" * 31 + "/"):
        with pytest.raises(ValueError, match="not the name of a kept arrays folder"):
            remove_arrays(tmp_path / "arrays", key)
    assert (tmp_path / "keep").is_dir()
    assert remove_arrays(tmp_path / "arrays", "0" * 32) is False  # nothing there: nothing to do


def test_the_loader_accepts_the_shuffled_file_as_the_projects_do():
    import io

    data = load_csv(io.BytesIO(_german_csv(True)), label="credit", sensitive="sex", positive="good credit",
                    id_column="id")
    assert sorted(data.ids.tolist()) == sorted(load_german().ids.tolist())


def test_a_config_pointing_out_of_the_arrays_folder_deletes_the_project_and_nothing_else(tmp_path, caplog):
    with Store(tmp_path / "fairal.db") as store:
        pid = create_project(store, ProjectSettings(name="p", budget=20, n_initial=20), csv=_source())
        config = store.project(pid)["config"]
        kept = tmp_path / "arrays" / config["arrays"]["key"]
        store.update_project(pid, config={**config, "arrays": {**config["arrays"], "key": ".."}})
        delete_project(store, pid, confirm="p")
        assert store.projects(include_archived=True) == []
    assert kept.is_dir() and (tmp_path / "fairal.db").exists()
    assert "not the name of a kept arrays folder" in caplog.text
