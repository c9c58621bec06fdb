"""The Crowd page (AppTest): learning from crowds, uncertain items to review, a column mapping on import."""

from __future__ import annotations

from fairal.store import Store

from test_app import crowd_csv, db, open_project_page, plain, project_id, signed_in, template  # noqa: F401


def test_learning_from_crowds_builds_the_validation_set_and_queues_uncertain_items(db):  # noqa: F811
    at = open_project_page(signed_in(), "crowd", "German", "crowd_project", db)
    at.file_uploader(key="crowd_upload").set_value(("crowd.csv", crowd_csv(db), "text/csv")).run()
    at.button(key="crowd_import").click().run()
    assert not at.exception
    assert at.selectbox(key="crowd_method").value == "learning_from_crowds"  # the default
    assert {"glad", "mace", "mmsr", "one_coin_dawid_skene"} <= set(at.selectbox(key="crowd_method").options)
    assert "dawid_skene_4" not in at.selectbox(key="crowd_method").options  # a binary project
    compared = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert "learning_from_crowds" in set(compared["method"])
    at.button(key="crowd_build").click().run()
    assert not at.exception
    assert "Validation set stored: **12 items**" in at.success[0].value
    with Store(db) as store:
        assert store.validation_info(project_id(db, "German"))["method"] == "learning_from_crowds"
    at.slider(key="crowd_min_confidence").set_value(1.0).run()
    button = at.button(key="crowd_review_uncertain")
    assert not button.disabled
    button.click().run()
    assert not at.exception
    sent = int(plain(at.success[0].value).split()[1])
    with Store(db) as store:
        requests = store.review_requests(project_id(db, "German"))
    assert sent == len(requests) > 0
    assert requests[0]["reason"].startswith("uncertain learning_from_crowds label")


def test_a_column_mapping_imports_frtrain_style_files(db):  # noqa: F811
    with Store(db) as store:
        items = store.item_ids(project_id(db, "German"), "pool")[:3]
    content = "row,rating_1,worker_1,rating_2,worker_2\n" + "".join(f"{i},1,a,0,b\n" for i in items)
    at = open_project_page(signed_in(), "crowd", "German", "crowd_project", db)
    at.file_uploader(key="crowd_upload").set_value(("amt.csv", content.encode(), "text/csv")).run()
    at.button(key="crowd_import").click().run()
    assert "Nothing was imported from amt.csv" in plain(at.error[0].value)
    at.text_input(key="crowd_column_item").input("row")
    at.text_input(key="crowd_column_answer").input("rating").run()
    at.button(key="crowd_import").click().run()
    assert not at.exception
    assert "Imported 6 answers from amt.csv" in plain(at.success[0].value)


def test_learning_from_crowds_with_item_difficulty_builds_the_validation_set_from_the_page(db):  # noqa: F811
    """The feature-aware model that also reads the quiz items is one choice of the Method box like the others;
    without enough quiz items it counts each item's answers as one, and nothing breaks."""
    at = open_project_page(signed_in(), "crowd", "German", "crowd_project", db)
    at.file_uploader(key="crowd_upload").set_value(("crowd.csv", crowd_csv(db), "text/csv")).run()
    at.button(key="crowd_import").click().run()
    at.selectbox(key="crowd_method").set_value("learning_from_crowds_difficulty").run()
    at.button(key="crowd_build").click().run()
    assert not at.exception
    assert "Validation set stored: **12 items**" in at.success[0].value
    with Store(db) as store:
        assert store.validation_info(project_id(db, "German"))["method"] == "learning_from_crowds_difficulty"
