"""AppTest tests: every page renders without exception; labeling moves the curve."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fairal.store import Store

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "fairal.db"
    monkeypatch.setenv("FAIRAL_DB", str(path))
    return path


def started() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120).run()


def test_label_page_opens_on_a_ready_adult_project(db):
    at = started()
    assert not at.exception
    assert "Adult (demo)" in at.title[0].value
    assert at.button(key="label_value_1").label == ">50K"


def test_labeling_five_items_moves_the_curve(db):
    at = started()
    for i in range(5):
        at.button(key=f"label_value_{i % 2}").click().run()
        assert not at.exception
    with Store(db) as store:
        project = store.project_by_name("Adult (demo)")
        frame = store.curve_frame(project["id"])
        assert store.label_count(project["id"]) == 5
    for trainer in ("head", "erm"):  # the demo project trains PANDA's learner and a converged LR
        part = frame[frame["trainer"] == trainer]
        assert sorted(part["budget"]) == [0, 1, 2, 3, 4, 5]
        assert part["f1"].nunique() > 1
    at.switch_page("app_pages/curves.py").run()
    assert not at.exception
    assert at.metric[0].value == "5"


def test_skip_and_undo_buttons(db):
    at = started()
    first = at.caption[-2].value if at.caption else ""
    at.button(key="label_skip").click().run()
    assert not at.exception
    at.button(key="label_value_0").click().run()
    at.button(key="label_undo").click().run()
    assert not at.exception
    with Store(db) as store:
        project = store.project_by_name("Adult (demo)")
        assert store.label_count(project["id"]) == 0
        assert [h["action"] for h in store.label_history(project["id"])] == ["submit", "undo"]
    assert first  # the strategy's reason was shown


def test_curves_page_renders(db):
    at = started()
    at.switch_page("app_pages/curves.py").run()
    assert not at.exception
    assert at.selectbox(key="curves_metric").value == "demographic_parity_to_overall"  # the project's metric


def test_setup_page_creates_a_project(db):
    at = started()
    at.switch_page("app_pages/setup.py").run()
    assert not at.exception
    at.selectbox(key="setup_dataset").select("german").run()
    at.text_input(key="setup_name").input("German test").run()
    at.number_input(key="setup_budget").set_value(20).run()
    at.button(key="setup_create").click().run()
    assert not at.exception
    assert at.success, "no success message"
    with Store(db) as store:
        project = store.project_by_name("German test")
        assert project["dataset"] == "german" and project["budget"] == 20
    at.switch_page("app_pages/label.py").run()
    assert "German test" in at.title[0].value


def test_setup_page_reports_a_bad_budget(db):
    at = started()
    at.switch_page("app_pages/setup.py").run()
    at.selectbox(key="setup_dataset").select("german").run()
    at.number_input(key="setup_budget").set_value(5000).run()
    at.button(key="setup_create").click().run()
    assert not at.exception
    assert "larger than the unlabeled pool" in at.error[0].value
