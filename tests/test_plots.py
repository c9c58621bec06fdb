"""The live project charts: each trainer its own colour, marker and dash; paths in budget order."""

import pytest

from fairal.labeling import LabelingSession
from fairal.plots import budget_figure, latest_per_trainer, tradeoff_figure
from fairal.projects import ProjectSettings, create_project, open_project
from fairal.store import Store


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """Curve points of a German project with two trainers after 0, 4, …, 20 oracle labels,
    with one undo (the same budget recorded twice: only the latest counts)."""
    path = tmp_path_factory.mktemp("plots") / "fairal.db"
    with Store(path) as store:
        project_id = create_project(store, ProjectSettings(name="g", dataset="german", budget=40,
                                                           trainers=("erm", "head")))
        session = LabelingSession(store, project_id, "ann", retrain=False)
        data = open_project(store, project_id).dataset
        for step in range(5):
            for _ in range(4):
                item = session.next_item()
                session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))
            if step == 2:
                session.undo()
                item = session.next_item()
                session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))
            open_project(store, project_id).retrain(store)
        return store.curve_frame(project_id)


def test_each_trainer_has_its_own_colour_marker_and_dash(frame):
    figure = tradeoff_figure(frame, "demographic_parity_difference", threshold=0.1)
    paths = [t for t in figure.data if t.showlegend is not False]
    assert sorted(t.name for t in paths) == ["erm · entropy", "head · entropy"]
    assert len({t.marker.color for t in paths}) == 2 and len({t.line.color for t in paths}) == 2
    assert len({t.marker.symbol for t in paths}) == 2
    assert len({t.line.dash for t in paths}) == 2
    assert figure.layout.legend.title.text == "trainer · strategy"
    assert not any(getattr(t.marker, "colorbar", None) and t.marker.showscale for t in figure.data)
    # the budget figures use the same colour for the same trainer
    by_budget = {t.name: t.marker.color for t in budget_figure(frame, "f1").data}
    assert {t.name: t.marker.color for t in paths} == by_budget


def test_paths_follow_the_budget_and_show_it(frame):
    figure = tradeoff_figure(frame, "demographic_parity_difference")
    for path in (t for t in figure.data if t.showlegend is not False):
        budgets = list(path.customdata)
        assert budgets == sorted(budgets) == [0, 4, 8, 12, 16, 20]  # one point per budget, in order
        assert list(path.marker.size) == sorted(path.marker.size) and path.marker.size[0] < path.marker.size[-1]
        labelled = [t for t in path.text if t]
        assert labelled[0] == "n=0" and labelled[-1] == "n=20" and 2 <= len(labelled) <= 4
        assert "budget %{customdata}" in path.hovertemplate
    rings = [t for t in figure.data if t.showlegend is False]
    assert len(rings) == 2 and all(t.marker.symbol == "circle-open" for t in rings)


def test_headline_is_one_row_per_trainer_at_its_latest_budget(frame):
    rows = latest_per_trainer(frame)
    assert sorted(rows["trainer"]) == ["erm", "head"]
    assert set(rows["budget"]) == {20}
    latest_erm = frame[(frame["trainer"] == "erm") & (frame["budget"] == 20)].sort_values("id").iloc[-1]
    assert rows.set_index("trainer").loc["erm", "f1"] == pytest.approx(latest_erm["f1"])
