"""AppTest tests: sign-in and roles, every page, labeling, the crowd tools.

The store is prepared once (demo Adult project, an admin, an annotator, two small German
projects) and copied for each test; ``FAIRAL_WORKER=off`` keeps the app from starting the
background worker, so sessions retrain inline.
"""

import re
import shutil
from pathlib import Path

import pytest
import statsmodels.datasets.fair
from streamlit.testing.v1 import AppTest

from fairal import auth
from fairal.metrics import LABELS
from fairal.projects import ProjectSettings, create_project, ensure_default_project
from fairal.store import Store

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")
FAIR = Path(statsmodels.datasets.fair.__file__).with_name("fair.csv")
ADMIN, ANNOTATOR, PASSWORD = "admin", "ann", "correct horse"


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "fairal.db"
    with Store(path) as store:
        ensure_default_project(store)
        admin = auth.create_account(store, ADMIN, PASSWORD, role="admin")
        german = create_project(store, ProjectSettings(name="German", dataset="german", budget=20,
                                                       gold_rate=0.3))
        create_project(store, ProjectSettings(name="German 1-4", dataset="german", budget=20,
                                              scale="confidence4"))
        annotator = auth.create_account(store, ANNOTATOR, PASSWORD, by=admin)
        store.add_member(german, annotator.id)
    return path


@pytest.fixture
def db(template, tmp_path, monkeypatch):
    path = tmp_path / "fairal.db"
    shutil.copy(template, path)
    monkeypatch.setenv("FAIRAL_DB", str(path))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    return path


@pytest.fixture
def empty_db(tmp_path, monkeypatch):
    path = tmp_path / "fairal.db"
    monkeypatch.setenv("FAIRAL_DB", str(path))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    return path


def started() -> AppTest:
    return AppTest.from_file(APP, default_timeout=120).run()


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button(key="login_submit").click().run()


def signed_in(name: str = ADMIN, password: str = PASSWORD) -> AppTest:
    at = sign_in(started(), name, password)
    assert not at.exception
    return at


def plain(markdown: str) -> str:
    """A message without the app's Markdown escapes."""
    return re.sub(r"\\(.)", r"\1", markdown)


def pages(at: AppTest) -> list[str]:
    """The page scripts the router offers this session (file names; an address that only shows
    the sign-in form or "for admins" is not a page of its own)."""
    names = {Path(p["script_path"]).name for p in at._registered_pages.values() if p["script_path"]}
    return sorted(names - {Path(APP).name})


def project_id(db, name: str) -> int:
    with Store(db) as store:
        return int(store.project_by_name(name)["id"])


def open_project_page(at: AppTest, page: str, name: str, key: str, db) -> AppTest:
    at.switch_page(f"app_pages/{page}.py").run()
    return at.selectbox(key=key).select(project_id(db, name)).run()


# --- accounts and roles ----------------------------------------------------------------


def test_first_admin_is_created_then_signs_in(empty_db, capsys):
    at = started()
    assert plain(at.title[0].value) == "Create the first admin account"
    assert pages(at) == ["login.py"]
    # the one-time setup code the app printed in its server console
    at.text_input(key="login_setup_code").input(re.search(r"setup code: (\w+)", capsys.readouterr().err).group(1))
    at.text_input(key="login_new_name").input("root")
    at.text_input(key="login_new_password").input("a long password")
    at.text_input(key="login_new_again").input("another password")
    at.button(key="login_create").click().run()
    assert "differ" in at.error[0].value
    at.text_input(key="login_new_password").input("a long password")
    at.text_input(key="login_new_again").input("a long password")
    at.button(key="login_create").click().run()
    assert not at.exception
    assert "Adult (demo)" in plain(at.title[0].value)  # signed in, on the demo project
    assert pages(at) == ["annotators.py", "crowd.py", "curves.py", "label.py", "setup.py"]
    at.button(key="app_sign_out").click().run()
    assert plain(at.title[0].value) == "Sign in to fairal"
    sign_in(at, "root", "a long password")
    assert "Adult (demo)" in plain(at.title[0].value)


def test_wrong_password_is_refused(db):
    at = sign_in(started(), ADMIN, "wrong password")
    assert at.error[0].value == "Wrong name or password."
    assert pages(at) == ["login.py"]
    assert "fairal_user_id" not in at.session_state
    assert sign_in(at, "nobody", PASSWORD).error[0].value == "Wrong name or password."


def test_annotator_sees_only_label_and_own_projects(db):
    at = signed_in(ANNOTATOR)
    assert pages(at) == ["label.py"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/setup.py")
    assert plain(at.title[0].value) == "Label · German"
    assert at.selectbox(key="label_project").options == ["German"]


def test_role_changes_apply_on_the_next_run(db):
    at = signed_in(ANNOTATOR)
    with Store(db) as store:
        store.set_role(store.annotator_by_name(ANNOTATOR)["id"], "admin")
    assert pages(at.run()) == ["annotators.py", "crowd.py", "curves.py", "label.py", "setup.py"]


SSO = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "secret",
                "client_id": "fairal", "client_secret": "secret",
                "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}}


def test_single_sign_on_maps_the_email_to_a_local_account(db):
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets.update(SSO)
    assert at.run().button(key="login_sso").label == "Sign in with SSO"
    at.user = {"is_logged_in": True, "email": "dana@example.org"}
    at.run()
    assert not at.exception
    assert pages(at) == ["label.py"]  # a new SSO account is an annotator without projects
    assert "not assigned to a project yet" in at.info[0].value
    with Store(db) as store:
        assert store.annotator_by_name("dana@example.org")["role"] == "annotator"


def test_annotator_without_a_project_gets_a_message(db):
    with Store(db) as store:
        admin = auth.authenticate(store, ADMIN, PASSWORD)
        auth.create_account(store, "bob", PASSWORD, by=admin)
    at = signed_in("bob")
    assert not at.exception
    assert "not assigned to a project yet" in at.info[0].value
    assert "label_value_0" not in [b.key for b in at.button]


def test_annotator_cannot_open_an_unassigned_project_by_crafted_state(db):
    at = signed_in(ANNOTATOR)
    demo = project_id(db, "Adult (demo)")
    at.session_state["fairal_project_id"] = demo
    at.run()
    assert not at.exception
    assert f"not assigned to project {demo}" in at.error[0].value
    assert "label_value_0" not in [b.key for b in at.button]  # no item shown
    assert not at.table
    with Store(db) as store:
        assert store.leases(demo) == [] and store.label_count(demo) == 0


def test_admin_creates_an_account_and_assigns_it(db):
    at = signed_in()
    at.switch_page("app_pages/annotators.py").run()
    assert not at.exception
    german = project_id(db, "German")
    at.text_input(key="ann_new_name").input("carol")
    at.text_input(key="ann_new_password").input("carol's password")
    at.multiselect(key="ann_new_projects").select(german)
    at.button(key="ann_create_submit").click().run()
    assert not at.exception
    assert "Created annotator **carol**" in at.success[0].value
    table = at.dataframe[0].value
    assert list(table.columns) == ["name", "role", "sign-in", "projects", "labels given"]
    assert table.set_index("name").loc["carol", "projects"] == "German"
    assert not table.astype(str).apply(lambda c: c.str.contains("argon2")).any().any()  # no hashes shown
    with Store(db) as store:
        carol = auth.authenticate(store, "carol", "carol's password")
        assert carol.role == "annotator" and [p["name"] for p in store.member_projects(carol.id)] == ["German"]
    at.selectbox(key="ann_account").select(carol.id).run()  # unassign, reset the password
    at.multiselect(key=f"ann_projects_{carol.id}").unselect(german)
    at.button(key="ann_save_projects").click().run()
    at.text_input(key="ann_reset_password").input("a new password")
    at.text_input(key="ann_reset_again").input("a new password")
    at.button(key="ann_reset_submit").click().run()
    assert not at.exception
    with Store(db) as store:
        assert store.member_projects(carol.id) == []
        assert auth.authenticate(store, "carol", "a new password") is not None


# --- labeling ----------------------------------------------------------------------------


def test_label_page_opens_on_a_ready_adult_project(db):
    at = signed_in()
    assert "Adult (demo)" in plain(at.title[0].value)
    assert plain(at.button(key="label_value_1").label) == ">50K"  # escaped: button labels read Markdown
    assert [at.button(key=k).proto.shortcut for k in ("label_value_0", "label_value_1", "label_skip",
                                                      "label_undo")] == ["1", "2", "s", "u"]


def test_labeling_five_items_moves_the_curve(db):
    at = signed_in()
    for i in range(5):
        at.button(key=f"label_value_{i % 2}").click().run()
        assert not at.exception
    with Store(db) as store:
        project = store.project_by_name("Adult (demo)")
        frame = store.curve_frame(project["id"])
        assert store.label_count(project["id"]) == 5
    for trainer in ("pool_parity", "erm"):  # the demo trains the LR with parity on the pool, and without
        part = frame[frame["trainer"] == trainer]
        assert sorted(part["budget"]) == [0, 1, 2, 3, 4, 5]
        assert part["f1"].nunique() > 1
    at.switch_page("app_pages/curves.py").run()
    assert not at.exception
    assert set(at.table[0].value["labels"]) == {"5"}  # both trainers' headline rows at budget 5
    assert [b.proto.label for b in at.get("download_button")] == ["Download the curve table (CSV)",
                                                                 "Download the labels (CSV)"]


def test_skip_and_undo_buttons(db):
    at = signed_in()
    assert "rank 1 of the pool by **group_random**" in " ".join(c.value for c in at.caption)  # the strategy's reason
    at.button(key="label_skip").click().run()
    assert not at.exception
    at.button(key="label_value_0").click().run()
    at.button(key="label_undo").click().run()
    assert not at.exception
    with Store(db) as store:
        project = store.project_by_name("Adult (demo)")
        assert store.label_count(project["id"]) == 0
        assert [h["action"] for h in store.label_history(project["id"])] == ["submit", "undo"]


def test_confidence4_project_has_four_answer_keys(db):
    at = open_project_page(signed_in(), "label", "German 1-4", "label_project", db)
    assert plain(at.title[0].value) == "Label · German 1-4"
    buttons = [at.button(key=f"label_value_{i}") for i in range(4)]
    assert [b.proto.shortcut for b in buttons] == ["1", "2", "3", "4"]
    assert [b.label for b in buttons] == ["surely bad credit", "maybe bad credit", "maybe good credit",
                                          "surely good credit"]
    at.button(key="label_value_3").click().run()
    at.button(key="label_value_0").click().run()
    assert not at.exception
    with Store(db) as store:
        assert [a["answer"] for a in store.answers(project_id(db, "German 1-4"))] == [4, 1]
    assert "“surely bad credit”" in at.caption[0].value


def test_quiz_items_are_answered_with_feedback_and_never_reveal_the_answer(db):
    at = signed_in(ANNOTATOR)
    for _ in range(15):  # the German project mixes in 30 % quiz items
        if "quiz item" in " ".join(c.value for c in at.caption):
            break
        at.button(key="label_value_0").click().run()
    else:
        pytest.fail("no quiz item in 15 items")
    assert not at.toast and "expected" not in " ".join(c.value for c in at.caption)  # nothing given away
    assert "credit" not in at.table[0].value.index  # the label is not among the attributes shown
    at.button(key="label_value_1").click().run()
    assert not at.exception
    assert at.toast[0].value in ("Quiz item: right!", "Quiz item: the expected answer was “bad credit”.")
    with Store(db) as store:
        german = project_id(db, "German")
        assert len(store.gold_answers(german)) == 1
        assert not {a["item_id"] for a in store.answers(german)} & set(store.gold(german))  # never a label


# --- practitioner pages -------------------------------------------------------------------


def test_curves_page_renders(db):
    at = signed_in()
    at.switch_page("app_pages/curves.py").run()
    assert not at.exception
    assert at.selectbox(key="curves_metric").value == "demographic_parity_to_overall"  # the project's metric
    metrics = ("disparate_impact_ratio", "worst_group_accuracy", "equalized_odds_difference", "error_rate_balance",
               "true_positive_rate_difference")
    assert {LABELS[m] for m in metrics} <= set(at.selectbox(key="curves_metric").options)
    assert any("background worker is switched off" in i.value for i in at.info)
    assert at.get("download_button")  # the curve table as CSV
    headline = at.table[0].value  # one row per trainer, never "whichever finished last"
    assert sorted(plain(name) for name in headline.index) == ["erm", "pool_parity"]  # Markdown-escaped cells
    assert set(headline["labels"]) == {"0"}
    assert {"F-score", "accuracy", "meets ρ = 0.04"} <= set(headline.columns)


def test_setup_page_creates_a_project(db):
    at = signed_in()
    at.switch_page("app_pages/setup.py").run()
    assert not at.exception
    assert {"frtrain", "forml"} <= set(at.multiselect(key="setup_trainers").options)
    at.selectbox(key="setup_dataset").select("german").run()
    at.text_input(key="setup_name").input("German test").run()
    at.number_input(key="setup_budget").set_value(20)
    at.number_input(key="setup_overlap").set_value(3)
    at.radio(key="setup_scale").set_value("confidence4")
    at.slider(key="setup_gold_rate").set_value(10)
    at.number_input(key="setup_lease").set_value(5)
    at.button(key="setup_create").click().run()
    assert not at.exception
    assert at.success, "no success message"
    with Store(db) as store:
        project = store.project_by_name("German test")
        assert project["dataset"] == "german" and project["budget"] == 20
        assert project["config"]["overlap"] == 3 and project["config"]["scale"] == "confidence4"
        assert project["config"]["gold_rate"] == 0.1 and project["config"]["lease_seconds"] == 300
    at.switch_page("app_pages/label.py").run()
    assert "German test" in plain(at.title[0].value)


def open_setup(db, name: str | None = None) -> AppTest:
    at = signed_in()
    at.switch_page("app_pages/setup.py").run()
    if name is not None:
        at.selectbox(key="setup_project").select(project_id(db, name)).run()
    assert not at.exception
    return at


def test_setup_budget_is_bounded_by_the_pool(db):
    at = open_setup(db)
    budget = at.number_input(key="setup_budget")
    assert (budget.value, budget.max) == (400, 11305)  # Adult: 45,222 rows, a quarter of them in the pool
    at.selectbox(key="setup_dataset").select("german").run()
    budget = at.number_input(key="setup_budget")
    assert (budget.value, budget.max) == (250, 250)
    assert any("**1,000 rows** · unlabeled pool of **250** items" in m.value for m in at.markdown)
    balance = at.dataframe[0].value
    assert balance.loc["all", ["bad credit", "good credit"]].tolist() == [300, 700]


def test_setup_name_follows_the_data_until_typed(db):
    at = open_setup(db)
    assert at.text_input(key="setup_name").value == "adult project 4"
    at.selectbox(key="setup_dataset").select("german").run()
    assert at.text_input(key="setup_name").value == "german project 4"
    at.radio(key="setup_source").set_value("Upload a CSV").run()
    at.file_uploader(key="setup_upload").set_value(("fair.csv", FAIR.read_bytes(), "text/csv")).run()
    assert at.text_input(key="setup_name").value == "fair project 4"
    at.text_input(key="setup_name").input("Marriages").run()
    at.radio(key="setup_source").set_value("Built-in data set").run()
    assert at.text_input(key="setup_name").value == "Marriages"


def test_setup_from_a_csv_suggests_previews_and_names_the_classes(db):
    at = open_setup(db)
    at.radio(key="setup_source").set_value("Upload a CSV").run()
    at.file_uploader(key="setup_upload").set_value(("fair.csv", FAIR.read_bytes(), "text/csv")).run()
    assert not at.exception
    assert (at.selectbox(key="setup_csv_label").value, at.selectbox(key="setup_csv_sensitive").value) == \
        ("affairs", "age")  # no two-valued column: the last one, which has 77 values
    error = plain(at.error[0].value)
    assert "type the positive one under “Positive label value”" in error and "positive=" not in error
    assert at.button(key="setup_create").disabled
    at.selectbox(key="setup_csv_label").select("rate_marriage").run()
    at.text_input(key="setup_csv_positive").input("5").run()
    assert not at.error
    assert at.dataframe[0].value.index.tolist() == ["17.5", "22", "27", "32", "37", "42", "all"]
    assert at.dataframe[1].value.iloc[0].tolist() == ["32", "9", "3", "3", "17", "2", "5", "0.1111111"]
    assert (at.number_input(key="setup_budget").value, at.number_input(key="setup_budget").max) == (400, 1591)
    assert [at.text_input(key=f"setup_class_{i}").value for i in range(2)] == ["not 5", "5"]
    assert at.text_input(key="setup_class_0").label == "Name of class not 5"
    at.text_input(key="setup_class_0").input("less happy")
    at.text_input(key="setup_class_1").input("very happy")
    at.number_input(key="setup_budget").set_value(30)
    at.button(key="setup_create").click().run()
    assert not at.exception
    assert "Created **fair project 4**" in plain(at.success[0].value)
    with Store(db) as store:
        project = store.project_by_name("fair project 4")
        assert project["dataset"] == "csv:fair.csv" and project["budget"] == 30
        assert project["config"]["class_names"] == ["less happy", "very happy"]
    at.switch_page("app_pages/label.py").run()
    assert [at.button(key=f"label_value_{i}").label for i in range(2)] == ["less happy", "very happy"]
    values = at.table[0].value["value"].tolist()
    assert values and not [v for v in values if plain(v).endswith(".0")]  # 22, not 22.0


def test_setup_edits_the_current_project(db):
    at = open_setup(db, "German")
    german = project_id(db, "German")
    assert "budget **20** of a pool of **250** items" in at.caption[0].value
    assert at.number_input(key=f"setup_edit_budget_{german}").max == 250
    at.text_input(key=f"setup_edit_name_{german}").input("German 1-4")  # taken
    next(b for b in at.button if b.label == "Save settings").click().run()
    assert "Nothing was changed: a project named 'German 1-4' already exists" in plain(at.error[0].value)
    at.text_input(key=f"setup_edit_name_{german}").input("German B")
    at.number_input(key=f"setup_edit_budget_{german}").set_value(30)
    at.number_input(key=f"setup_edit_overlap_{german}").set_value(2)
    at.text_input(key=f"setup_edit_class_1_{german}").input("good")
    next(b for b in at.button if b.label == "Save settings").click().run()
    assert not at.exception
    assert "Saved the settings of **German B**" in plain(at.success[0].value)
    assert "budget **30** of a pool of **250** items · 2 annotator(s) per item" in at.caption[0].value
    assert at.number_input(key=f"setup_edit_overlap_{german}").min == 2  # k only goes up
    with Store(db) as store:
        row = store.project(german)
        assert (row["name"], row["budget"], row["config"]["overlap"]) == ("German B", 30, 2)
        assert row["config"]["class_names"] == ["bad credit", "good"]


def test_setup_archives_restores_and_deletes_a_project(db):
    at = open_setup(db, "German 1-4")
    project = project_id(db, "German 1-4")
    at.button(key=f"setup_archive_{project}").click().run()
    assert not at.exception
    assert "Archived **German 1\\-4**" in at.success[0].value
    assert "German 1-4" not in at.selectbox(key="setup_project").options
    at.toggle(key="setup_show_archived").set_value(True).run()
    at.button(key=f"setup_restore_{project}").click().run()
    assert "German 1-4" in at.selectbox(key="setup_project").options
    at.selectbox(key="setup_project").select(project).run()
    at.text_input(key=f"setup_delete_confirm_{project}").input("German").run()
    at.button(key=f"setup_delete_{project}").click().run()
    assert "type the project's name, German 1-4, to delete it" in plain(at.error[0].value)
    at.text_input(key=f"setup_delete_confirm_{project}").input("German 1-4").run()
    at.button(key=f"setup_delete_{project}").click().run()
    assert not at.exception
    assert "Deleted **German 1\\-4**" in at.success[0].value
    with Store(db) as store:
        assert store.project_by_name("German 1-4") is None
    assert "German 1-4" not in at.selectbox(key="setup_project").options


def crowd_csv(db, name: str = "German") -> bytes:
    """Three workers answer 12 pool items and 4 quiz items; w3 always says 0."""
    with Store(db) as store:
        german = project_id(db, name)
        pool, gold = store.item_ids(german, "pool")[:12], list(store.gold(german))[:4]
    lines = ["item_id,worker_id,answer"]
    for i, item in enumerate(pool + gold):
        lines += [f"{item},w1,{i % 2}", f"{item},w2,{i % 2}", f"{item},w3,0"]
    return "\n".join(lines).encode()


def test_crowd_upload_then_use_as_validation_set(db):
    at = open_project_page(signed_in(), "crowd", "German", "crowd_project", db)
    assert not at.exception
    at.file_uploader(key="crowd_upload").set_value(("crowd.csv", crowd_csv(db), "text/csv")).run()
    at.button(key="crowd_import").click().run()
    assert not at.exception
    assert "Imported 48 answers from crowd.csv" in plain(at.success[0].value)
    frames = [d.value for d in at.dataframe]
    assert "file crowd.csv" in frames[0]["source"].tolist()  # answers by source
    assert set(frames[1]["worker_id"]) == {"w1", "w2", "w3"}  # worker quality on the quiz items
    assert {"ci_low", "ci_high"} <= set(frames[1].columns)
    at.selectbox(key="crowd_method").select("majority_vote")
    at.button(key="crowd_build").click().run()
    assert not at.exception
    assert "Validation set stored: **12 items**" in at.success[0].value  # quiz items are left out
    with Store(db) as store:
        info = store.validation_info(project_id(db, "German"))
        assert info["size"] == 12 and info["method"] == "majority_vote"
    assert len(at.get("download_button")) == 6  # answers, labels, workers × CSV, JSON
    # a second set replaces the first only once the admin says so
    assert at.button(key="crowd_build").disabled
    at.checkbox(key="crowd_replace").check().run()
    assert not at.button(key="crowd_build").disabled


@pytest.mark.parametrize("content, message", [
    (b"item_id,worker_id,answer\n{item},w1,7\n", "outside the binary scale"),
    (b"item_id,worker_id,answer\n{item},w1,1\n99999999,w1,0\n", "not in this project"),
    (b"PK\x03\x04 not a csv", "ZIP archive"),
])
def test_malformed_crowd_upload_imports_nothing(db, content, message):
    with Store(db) as store:
        item = store.item_ids(project_id(db, "German"), "pool")[0]
    at = open_project_page(signed_in(), "crowd", "German", "crowd_project", db)
    at.file_uploader(key="crowd_upload").set_value(("bad.csv", content.replace(b"{item}", str(item).encode()),
                                                     "text/csv")).run()
    at.button(key="crowd_import").click().run()
    assert not at.exception
    assert "Nothing was imported from bad.csv" in plain(at.error[0].value) and message in plain(at.error[0].value)
    with Store(db) as store:
        assert store.crowd_answers(project_id(db, "German")) == []
