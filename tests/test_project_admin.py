"""Setting up from a CSV (column suggestions, the preview, class names) and changing, archiving and
deleting projects after creation: fairal.projects, fairal.store, fairal.datasets on real data
(German Credit, statsmodels' Fair affairs survey, plotly's tips)."""

import gzip
import io
import sqlite3
from pathlib import Path

import pandas as pd
import plotly
import pytest
import statsmodels.datasets.fair

from fairal import auth
from fairal.auth import AccessDenied
from fairal.datasets import DatasetError, load, load_csv, suggest_columns
from fairal.labeling import LabelingSession
from fairal.projects import (
    CsvSource,
    ProjectError,
    ProjectSettings,
    archive_project,
    create_project,
    delete_project,
    labels_table,
    next_project_name,
    open_project,
    preview,
    restore_project,
    settings_of,
    summarize,
    update_project_settings,
)
from fairal.retrainer import Retrainer
from fairal.store import _PROJECT_TABLES, Store

FAIR = Path(statsmodels.datasets.fair.__file__).with_name("fair.csv")
TIPS = Path(plotly.__file__).parent / "package_data" / "datasets" / "tips.csv.gz"


def tips() -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(gzip.decompress(TIPS.read_bytes())))


@pytest.fixture
def db(tmp_path):
    return tmp_path / "fairal.db"


@pytest.fixture
def store(db):
    with Store(db) as s:
        yield s


@pytest.fixture
def admin(store):
    return auth.create_account(store, "root", "a long password", role="admin")


@pytest.fixture
def german(store):
    return create_project(store, ProjectSettings(name="German", dataset="german", budget=20))


# --- column suggestions ------------------------------------------------------------------


def test_suggested_columns_of_real_files():
    # Fair has no two-valued column: the last one is the label, "age" (6 values) the sensitive one
    assert suggest_columns(pd.read_csv(FAIR)) == ("affairs", "age")
    # tips: sex by its name; the last two-valued column other than it
    assert suggest_columns(tips()) == ("time", "sex")


def test_suggested_label_prefers_a_label_name_then_the_last_binary_column():
    frame = pd.DataFrame({"Income": [0, 1, 0, 1], "smoker": ["y", "n", "y", "n"], "region": list("abca"),
                          "x": [1.5, 2.5, 3.5, 4.5]})
    assert suggest_columns(frame) == ("Income", "smoker")  # no sensitive name: first low-cardinality column
    frame = pd.DataFrame({"flag": [0, 1, 0, 1], "Gender": ["f", "m", "m", "f"], "done": [1, 1, 0, 0]})
    assert suggest_columns(frame) == ("done", "Gender")  # a two-valued sensitive column is not the label


# --- the preview ---------------------------------------------------------------------------


def test_summary_counts_every_row_by_group_and_class():
    german = load("german", sensitive="sex")
    summary = summarize(german)
    assert (summary.rows, summary.pool) == (1000, 250)  # PANDA: half meta-train, a quarter pool, a quarter test
    assert list(summary.balance.columns) == ["bad credit", "good credit", "positive rate"]
    assert summary.balance.loc["all", ["bad credit", "good credit"]].tolist() == [300, 700]
    rates = german.base_rates()["positive_rate"]
    assert summary.balance["positive rate"].loc[["female", "male"]].round(6).tolist() == \
        rates.loc[["female", "male"]].round(6).tolist()
    assert len(summary.sample) == 5 and "credit" not in summary.sample.columns


def test_csv_preview_shows_whole_numbers_without_decimals():
    summary = preview(csv=CsvSource(data=FAIR.read_bytes(), label="rate_marriage", sensitive="age",
                                    positive="5.0", filename="fair.csv"))  # "5.0" is the value 5
    assert summary.classes == ("not 5", "5")
    assert summary.balance.index.tolist() == ["17.5", "22", "27", "32", "37", "42", "all"]
    assert summary.balance.loc["all", ["not 5", "5"]].sum() == summary.rows == 6366
    assert summary.pool == 1591
    assert summary.sample.iloc[0].tolist() == ["32", "9", "3", "3", "17", "2", "5", "0.1111111"]


def test_an_annotator_sees_integers_as_integers():
    ds = load_csv(FAIR, label="rate_marriage", sensitive="age", positive=5)
    row = ds.display.loc[2]  # 4,22,2.5,0,1,16,3,5,1.3999996 in the file (age and children read as floats)
    assert row.astype(str).tolist() == ["22", "2.5", "0", "1", "16", "3", "5", "1.3999996"]


@pytest.mark.parametrize("positive, words", [
    (None, "the label column rate_marriage has 5 values (1, 2, 3, 4, 5), not two: type the positive one "
           "under “Positive label value”"),
    ("7", "“Positive label value” 7 is not a value of the label column rate_marriage; its values are 1, 2, 3, 4, 5"),
])
def test_csv_errors_name_the_form_fields(positive, words):
    csv = CsvSource(data=FAIR.read_bytes(), label="rate_marriage", sensitive="age", positive=positive,
                    filename="fair.csv")
    with pytest.raises(DatasetError) as error:
        preview(csv=csv)
    assert words in str(error.value) and "positive=" not in str(error.value)
    assert error.value.field == "positive"


def test_the_default_name_follows_the_data_and_skips_taken_names(store, german):
    assert next_project_name(store, "fair") == "fair project 2"
    create_project(store, ProjectSettings(name="german project 3", dataset="german", budget=5))
    assert next_project_name(store, "german") == "german project 4"  # two projects, and 3 is taken


# --- class names ---------------------------------------------------------------------------


def test_named_classes_are_the_answer_keys(store):
    settings = ProjectSettings(name="Fair", budget=30, class_names=("less happy", "very happy"))
    csv = CsvSource(data=FAIR.read_bytes(), label="rate_marriage", sensitive="age", positive="5", filename="fair.csv")
    project_id = create_project(store, settings, csv=csv)
    assert store.project(project_id)["config"]["class_names"] == ["less happy", "very happy"]
    session = LabelingSession(store, project_id, "ann")
    assert session.label_names == ("less happy", "very happy")
    assert open_project(store, project_id).dataset.classes == ("not 5", "5")  # the data keeps its names
    with pytest.raises(ProjectError, match="class names must be different"):
        create_project(store, ProjectSettings(name="Fair 2", budget=30, class_names=("same", "same")), csv=csv)


def test_confidence_keys_use_the_class_names(store, german):
    update_project_settings(store, german, {"class_names": ["risky", "safe"]})
    project = create_project(store, ProjectSettings(name="German 1-4", dataset="german", budget=5,
                                                    scale="confidence4", class_names=("risky", "safe")))
    assert LabelingSession(store, project, "ann").label_names == ("surely risky", "maybe risky", "maybe safe",
                                                                  "surely safe")
    assert LabelingSession(store, german, "ann").label_names == ("risky", "safe")


# --- editing settings ----------------------------------------------------------------------


def test_settings_change_and_the_runtime_view_follows(store, admin, german):
    new = update_project_settings(store, german, {
        "name": "German B", "budget": 30, "trainers": ["erm", "fairlearn"], "threshold": 0.1,
        "metric": "equalized_odds_difference", "overlap": 2, "gold_rate": 0.2, "quiz_feedback": False,
        "lease_seconds": 120}, by=admin)
    row = store.project(german)
    assert (row["name"], row["budget"], row["trainers"], row["threshold"], row["metric"]) == \
        ("German B", 30, ["erm", "fairlearn"], 0.1, "equalized_odds_difference")
    assert row["config"]["overlap"] == 2 and row["config"]["lease_seconds"] == 120
    assert settings_of(row) == new
    project = open_project(store, german)
    assert (project.overlap, project.gold_rate, project.quiz_feedback) == (2, 0.2, False)
    # a quiz rate on a project created without one: the seed examples become the quiz items
    assert set(store.gold(german)) == {int(project.dataset.ids[p]) for p in project.seed}


@pytest.mark.parametrize("changes, message", [
    ({"budget": 251}, r"budget \(251\) is larger than the unlabeled pool \(250 items\)"),
    ({"budget": 0}, "budget must be at least 1"),
    ({"overlap": 1}, r"annotators per item \(k\) can only go up: it is 2, got 1"),
    ({"trainers": []}, "trainers must be a non-empty subset"),
    ({"gold_rate": 0.9}, "gold_rate must be between 0 and 0.5"),
    ({"name": "Other"}, "a project named 'Other' already exists"),
    ({"name": "  "}, "the project needs a name"),
    ({"strategy": "random"}, "cannot change strategy"),
    ({"class_names": ["one"]}, "german has 2 classes; got 1 class names"),
])
def test_bad_settings_change_nothing(store, german, changes, message):
    update_project_settings(store, german, {"overlap": 2})
    create_project(store, ProjectSettings(name="Other", dataset="german", budget=5))
    before = store.project(german)
    with pytest.raises(ProjectError, match=message):
        update_project_settings(store, german, changes)
    assert store.project(german) == before


def test_the_budget_cannot_drop_below_the_labels_given(store, german):
    session = LabelingSession(store, german, "ann", retrain=False)
    for _ in range(3):
        session.submit(session.next_item().item_id, 1)
    with pytest.raises(ProjectError, match=r"budget \(2\) is below the 3 pool items labeled already"):
        update_project_settings(store, german, {"budget": 2})
    update_project_settings(store, german, {"budget": 3})


def test_only_admins_change_archive_or_delete(store, german):
    annotator = auth.create_account(store, "ann", "a long password")
    for call in (lambda: update_project_settings(store, german, {"budget": 5}, by=annotator),
                 lambda: archive_project(store, german, by=annotator),
                 lambda: delete_project(store, german, confirm="German", by=annotator)):
        with pytest.raises(AccessDenied):
            call()
    assert store.project(german)["budget"] == 20 and store.projects()


def test_the_worker_trains_with_the_new_settings(db, store, german):
    worker = Retrainer(db, debounce=0.0)
    worker.run_once(store)
    update_project_settings(store, german, {"trainers": ["erm", "fairlearn"]})
    recorded = worker.run_once(store)
    assert [r["trainer"] for r in recorded] == ["fairlearn"]


# --- archive, restore, delete ----------------------------------------------------------------


def test_archived_projects_leave_the_lists_and_the_worker(db, store, admin, german):
    annotator = auth.create_account(store, "ann", "a long password", by=admin)
    store.add_member(german, annotator.id)
    worker = Retrainer(db, debounce=0.0)
    worker.run_once(store)
    session = LabelingSession(store, german, annotator, retrain=False)
    session.submit(session.next_item().item_id, 1)
    archive_project(store, german, by=admin)
    assert store.projects() == [] and store.member_projects(annotator.id) == []
    assert [p["name"] for p in store.projects(include_archived=True)] == ["German"]
    assert worker.run_once(store) == []  # a label waits, but the project is archived
    assert store.label_count(german) == 1  # labels stay
    with pytest.raises(AccessDenied, match="archived"):  # an open session takes no more answers
        session.submit(session.next_item().item_id, 1)
    with pytest.raises(AccessDenied, match="restore it on the Setup page"):
        LabelingSession(store, german, annotator, retrain=False)
    assert store.label_count(german) == 1
    restore_project(store, german, by=admin)
    assert [p["name"] for p in store.member_projects(annotator.id)] == ["German"]
    assert [r["budget"] for r in worker.run_once(store)] == [1]


def test_delete_needs_the_typed_name_and_removes_every_row(store, admin):
    csv = CsvSource(data=FAIR.read_bytes(), label="rate_marriage", sensitive="age", positive="5", filename="fair.csv")
    project_id = create_project(store, ProjectSettings(name="Fair", budget=20, gold_rate=0.2), csv=csv)
    keep = create_project(store, ProjectSettings(name="German", dataset="german", budget=5))
    session = LabelingSession(store, project_id, "ann")
    while not store.label_count(project_id):  # some items are quiz items
        session.submit(session.next_item().item_id, 1)
    with pytest.raises(ProjectError, match="type the project's name, Fair, to delete it"):
        delete_project(store, project_id, confirm="fair", by=admin)
    assert store.label_count(project_id) == 1
    delete_project(store, project_id, confirm="Fair", by=admin)
    assert [p["name"] for p in store.projects(include_archived=True)] == ["German"]
    with sqlite3.connect(store.path) as conn:
        for table in _PROJECT_TABLES:
            assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE project_id = ?", [project_id]).fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM dataset_files").fetchone() == (0,)
    assert store.label_count(keep) == 0 and len(store.item_ids(keep, "pool")) == 250


def test_delete_knows_every_table_of_a_project(store):
    with sqlite3.connect(store.path) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        with_project = {t for t in tables if any(c[1] == "project_id" for c in conn.execute(f"PRAGMA table_info({t})"))}
    assert with_project == set(_PROJECT_TABLES)


# --- the labels table --------------------------------------------------------------------------


def test_labels_table_has_one_row_per_labeled_item(store, german):
    empty = labels_table(store, german)
    assert empty.empty and list(empty.columns[:5]) == ["item_id", "label", "value", "answers", "annotators"]
    update_project_settings(store, german, {"overlap": 2, "class_names": ["risky", "safe"]})
    first, second = LabelingSession(store, german, "ann", retrain=False), LabelingSession(store, german, "bob",
                                                                                           retrain=False)
    item = first.next_item().item_id
    first.submit(item, 1)
    assert second.next_item().item_id == item  # overlap 2: the partly answered item first
    second.submit(item, 1)
    other = first.next_item().item_id
    first.submit(other, 0)
    table = labels_table(store, german)
    assert table[["item_id", "label", "value", "answers", "annotators"]].to_dict("records") == [
        {"item_id": i, "label": label, "value": value, "answers": n, "annotators": who}
        for i, label, value, n, who in sorted([(item, "safe", 1, 2, "ann, bob"), (other, "risky", 0, 1, "ann")])]
    assert {"age", "sex", "purpose"} <= set(table.columns)  # what the annotators saw
    assert "credit risk" not in table.columns


# --- an older database --------------------------------------------------------------------------


OLD_PROJECTS = """CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, dataset TEXT NOT NULL,
    label_column TEXT NOT NULL, sensitive TEXT NOT NULL, split_seed INTEGER NOT NULL, strategy TEXT NOT NULL,
    trainers TEXT NOT NULL, budget INTEGER NOT NULL, metric TEXT NOT NULL, threshold REAL NOT NULL,
    label_values TEXT NOT NULL, config TEXT NOT NULL, created_at TEXT NOT NULL)"""


@pytest.mark.parametrize("version", [4, 5])
def test_an_older_database_opens_and_gains_the_archive_column(tmp_path, version):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_PROJECTS)
        conn.execute("INSERT INTO projects VALUES (1, 'Old', 'german', 'credit', 'sex', 0, 'random', '[\"erm\"]', "
                     "10, 'demographic_parity_difference', 0.05, '[0, 1]', '{}', '2025-01-01T00:00:00+00:00')")
        conn.execute(f"PRAGMA user_version = {version}")
    with Store(path) as store:
        assert [(p["name"], p["archived_at"]) for p in store.projects()] == [("Old", None)]
        store.set_archived(1, True)
        assert store.projects() == [] and store.project(1)["archived_at"]
    with Store(path) as store:  # opening again changes nothing
        assert len(store.projects(include_archived=True)) == 1


def test_a_database_from_before_a_metric_existed_records_it_from_now_on(tmp_path):
    """Adding a metric to fairal.metrics.METRICS must not break existing databases
    ("table curve_points has no column named …"): metrics are rows of curve_metrics, so a
    database from before the metric simply has none of its rows."""
    path = tmp_path / "fairal.db"
    with Store(path) as store:
        project_id = create_project(store, ProjectSettings(name="G", dataset="german", budget=5))
        before = len(store.curve_frame(project_id))
    with sqlite3.connect(path) as conn:  # as a database written before this metric was added
        conn.execute("DELETE FROM curve_metrics WHERE metric = 'worst_group_accuracy'")
    with Store(path) as store:
        recorded = open_project(store, project_id).retrain(store)  # records every metric, this one included
        frame = store.curve_frame(project_id)
    assert len(frame) == before + len(recorded)
    assert frame["worst_group_accuracy"].iloc[:before].isna().all()  # unknown before: left empty
    assert frame["worst_group_accuracy"].iloc[before:].between(0, 1).all()
