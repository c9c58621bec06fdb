"""A CSV project keeps its encoded arrays beside the database; opening it reads them, checked, not the CSV."""

import numpy as np
import pandas as pd
import pytest

from fairal import projects
from fairal.datasets import load_german
from fairal.project_arrays import FILES, read_arrays
from fairal.projects import CsvSource, ProjectSettings, create_project, open_project
from fairal.store import Store


def _german_csv() -> bytes:
    german = load_german()
    frame = german.display.copy()
    frame["credit"] = np.array(german.classes)[german.y]
    return frame.to_csv().encode()


SOURCE = CsvSource(data=_german_csv(), label="credit", sensitive="sex", positive="good credit", id_column="id",
                   filename="german.csv")


def _forget():
    projects._csv_dataset.cache_clear()
    read_arrays.cache_clear()


def _same(a, b):
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.ids, b.ids)
    pd.testing.assert_frame_equal(a.display, b.display)
    assert (a.feature_names, a.classes, a.label_name, a.sensitive, a.name) == (
        b.feature_names, b.classes, b.label_name, b.sensitive, b.name)


@pytest.fixture()
def made(tmp_path):
    with Store(tmp_path / "fairal.db") as store:
        pid = create_project(store, ProjectSettings(name="csv", budget=20, n_initial=20), csv=SOURCE)
        record = store.project(pid)["config"]["arrays"]
    parsed = projects.csv_dataset(SOURCE)
    return tmp_path, pid, record, parsed


def _open_without_parsing(db, pid, monkeypatch):
    _forget()
    monkeypatch.setattr(projects, "_csv_dataset", lambda *a: pytest.fail("the CSV was parsed again"))
    with Store(db) as store:
        return open_project(store, pid)


def test_opening_reads_the_kept_arrays_not_the_csv(made, monkeypatch):
    folder, pid, record, parsed = made
    kept = folder / "arrays" / record["key"]
    assert sorted(p.name for p in kept.iterdir()) == sorted(FILES) and set(record["files"]) == set(FILES)
    project = _open_without_parsing(folder / "fairal.db", pid, monkeypatch)
    _same(project.dataset, parsed)
    assert not project.dataset.X.flags.writeable
    row = project.dataset.display.loc[int(parsed.ids[3])]
    pd.testing.assert_series_equal(row, parsed.display.loc[int(parsed.ids[3])])


@pytest.mark.parametrize("damage", ["flip a byte of X", "truncate y", "delete display", "swap ids"])
def test_damaged_or_missing_arrays_fall_back_to_the_csv(made, damage, caplog):
    folder, pid, record, parsed = made
    kept = folder / "arrays" / record["key"]
    if damage == "flip a byte of X":
        raw = bytearray((kept / "X.npy").read_bytes())
        raw[-5] ^= 0xFF
        (kept / "X.npy").write_bytes(bytes(raw))
    elif damage == "truncate y":
        (kept / "y.npy").write_bytes((kept / "y.npy").read_bytes()[:-8])
    elif damage == "delete display":
        (kept / "display.parquet").unlink()
    else:  # a valid .npy file, but not the recorded one
        np.save(kept / "ids.npy", np.asarray(parsed.ids)[::-1].copy())
    _forget()
    with Store(folder / "fairal.db") as store:
        dataset = open_project(store, pid).dataset
    _same(dataset, parsed)  # the right data, parsed from the stored CSV
    assert "re-parsing its CSV" in caplog.text


def test_an_in_memory_store_keeps_no_arrays_and_parses():
    with Store(memory=True) as store:
        pid = create_project(store, ProjectSettings(name="csv", budget=20, n_initial=20), csv=SOURCE)
        assert "arrays" not in store.project(pid)["config"]
        _forget()
        _same(open_project(store, pid).dataset, projects.csv_dataset(SOURCE))


def test_projects_of_one_upload_share_one_folder(made, monkeypatch):
    folder, pid, record, parsed = made
    with Store(folder / "fairal.db") as store:
        other = create_project(store, ProjectSettings(name="csv 2", budget=20, n_initial=20), csv=SOURCE)
        assert store.project(other)["config"]["arrays"] == record
    assert len(list((folder / "arrays").iterdir())) == 1
    _same(_open_without_parsing(folder / "fairal.db", other, monkeypatch).dataset, parsed)


def test_data_that_parquet_cannot_keep_exactly_leaves_no_folder(tmp_path):
    from fairal.datasets import Dataset
    from fairal.project_arrays import write_arrays

    base = load_german().subset(np.arange(4))
    for column in ([1, "two", 3.5, None], [1, 2, None, 4]):  # mixed types; ints with a gap come back as floats
        display = base.display.copy()
        display["odd"] = pd.Series(column, index=display.index, dtype=object)
        data = Dataset(name="odd", display=display, X=base.X, y=base.y, group=base.group, ids=base.ids,
                       feature_names=base.feature_names, label_name=base.label_name, classes=base.classes,
                       sensitive=base.sensitive)
        with pytest.raises(Exception):  # noqa: B017 (pyarrow's own type errors, or DatasetError)
            write_arrays(tmp_path / "odd", data)
        assert list(tmp_path.iterdir()) == []  # nothing half-written
