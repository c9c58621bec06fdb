import io

import numpy as np
import pandas as pd
import pytest

from fairal.cli import main
from fairal.datasets import load_compas
from fairal.metrics import METRICS
from fairal.plots import simulation_figures
from fairal.research.simulate import METHODS, simulate, summarise
from fairal.trainers import TRAINERS


@pytest.fixture(scope="module")
def compas():
    return load_compas()


@pytest.fixture(scope="module")
def small_run(compas):
    return simulate(compas, ["random", "entropy"], seeds=[0, 1], budgets=[0, 20, 40], n_initial=20,
                    representation="raw", query_batch=10)


def test_one_row_per_method_seed_budget(small_run):
    assert len(small_run) == 2 * 2 * 3
    assert set(small_run["method"]) == {"random", "entropy"}
    assert set(METRICS) <= set(small_run.columns)


def test_labels_grow_with_the_budget(small_run):
    assert (small_run["n_labels"] == 20 + small_run["budget"]).all()


def test_budget_zero_is_the_same_model_for_every_method(small_run):
    at_zero = small_run[small_run["budget"] == 0]
    for _, part in at_zero.groupby("seed"):
        assert part["f1"].nunique() == 1


def test_runs_are_reproducible(compas, small_run):
    again = simulate(compas, ["random"], seeds=[1], budgets=[0, 20, 40], n_initial=20,
                     representation="raw")
    expected = small_run[(small_run["method"] == "random") & (small_run["seed"] == 1)]
    np.testing.assert_allclose(again["f1"].to_numpy(), expected["f1"].to_numpy())


def test_summary_has_mean_and_standard_error(small_run):
    summary = summarise(small_run)
    assert list(summary["method"]) == ["random", "entropy"]
    assert (summary["budget"] == 40).all() and (summary["seeds"] == 2).all()
    assert (summary["f1_se"] >= 0).all()


def test_figures_are_built(small_run):
    figures = simulation_figures(small_run, threshold=0.04)
    assert set(figures) == {"budget_f1", "budget_dp", "final_dp_vs_f1", "final_dp_between_vs_f1",
                            "final_erb_vs_f1"}
    assert len(figures["final_dp_vs_f1"].data) == 2


def test_figure_titles_name_the_dataset_and_sensitive_attribute(small_run):
    table = small_run.assign(dataset="compas", sensitive="race")  # as `simulate` writes simulation.csv
    for name, figure in simulation_figures(table).items():
        assert "compas" in figure.layout.title.text and "sensitive attribute: race" in figure.layout.title.text, name
    assert "sensitive" not in simulation_figures(small_run.assign(dataset="compas"))["budget_f1"].layout.title.text


def test_tradeoff_methods_are_told_apart_by_a_legend_not_overlapping_text(small_run):
    at_end = small_run["budget"] == small_run["budget"].max()
    close = small_run.copy()  # entropy lands a hair from random, as on Adult
    for metric in ("f1", "demographic_parity_to_overall"):
        random = close.loc[at_end & (close["method"] == "random"), metric].to_numpy()
        close.loc[at_end & (close["method"] == "entropy"), metric] = random + 1e-4
    figure = simulation_figures(close)["final_dp_vs_f1"]
    assert figure.layout.showlegend and [t.name for t in figure.data] == ["random", "entropy"]
    assert all("text" not in t.mode for t in figure.data)
    assert len({(t.marker.symbol, t.marker.color) for t in figure.data}) == 2


def test_a_table_without_the_plotted_columns_is_a_clear_error(small_run):
    with pytest.raises(ValueError, match="needs the columns f1"):
        simulation_figures(small_run.drop(columns=["f1"]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(methods=["oracle"]), "methods must be a non-empty subset"),
        (dict(methods=["random"], budgets=[0, 10_000]), r"largest budget \(10000\) is larger than the pool"),
        (dict(methods=["random"], representation="magic"), "representation must be"),
    ],
)
def test_bad_simulation_input(compas, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(compas, **kwargs)


def test_pretrained_representation_run(compas):
    frame = simulate(compas, ["margin"], seeds=[0], budgets=[0, 20], n_initial=20)
    assert frame["accuracy"].between(0.5, 1.0).all()


def test_simulate_command_writes_csv_summary_and_figures(tmp_path, capsys):
    out = tmp_path / "sim"
    code = main(["simulate", "--dataset", "compas", "--methods", "random,margin", "--seeds", "2",
                 "--budget", "30", "--step", "15", "--n-initial", "20", "--representation", "raw",
                 "--out", str(out)])
    assert code == 0
    assert (out / "simulation.csv").exists() and (out / "summary.md").exists()
    assert (out / "figures" / "budget_dp.html").exists()
    assert "margin" in capsys.readouterr().out
    table = pd.read_csv(out / "simulation.csv")
    assert set(table["dataset"]) == {"compas"} and set(table["sensitive"]) == {"race"}


def test_plot_simulation_names_the_sensitive_attribute_of_an_old_table(tmp_path, small_run, monkeypatch):
    """A simulation.csv written before it had a `sensitive` column takes it from summary.md."""
    import fairal.cli

    small_run.assign(dataset="compas").to_csv(tmp_path / "simulation.csv", index=False)
    (tmp_path / "summary.md").write_text("# Simulation: compas, sensitive = race, 2 seeds, final budget 40\n")
    drawn = {}
    monkeypatch.setattr(fairal.cli, "_write_figures", lambda figures, folder: drawn.update(figures) or [])
    assert main(["plot-simulation", str(tmp_path)]) == 0
    assert "compas · sensitive attribute: race" in drawn["final_dp_vs_f1"].layout.title.text


def test_every_registered_method_names_a_strategy_and_trainer():
    for method in METHODS.values():
        assert method.strategy and method.trainer


def test_simulated_bands_overlay_a_live_figure(small_run):
    from fairal.plots import budget_figure, simulation_budget_figure

    live = small_run[small_run["method"] == "random"].assign(trainer="erm", strategy="random", id=range(6))
    figure = budget_figure(live, "f1")
    before = len(figure.data)
    simulation_budget_figure(small_run, "f1", figure=figure, dash="dot")
    assert len(figure.data) == before + 2 * 2  # a band and a mean line per simulated method
    assert figure.layout.title.text == "F1 score as labels arrive"


def test_a_simulation_is_checked_against_the_project_it_is_drawn_beside(small_run, tmp_path):
    from fairal.research.simulate import read_simulation

    path = tmp_path / "simulation.csv"
    small_run.assign(dataset="compas", sensitive="race").to_csv(path, index=False)
    frame = read_simulation(path, dataset="compas", sensitive="race", metric="error_rate_balance")
    assert len(frame) == len(small_run)
    with pytest.raises(ValueError, match="it simulates compas, but this project labels adult"):
        read_simulation(path, dataset="adult", sensitive="race", metric="f1")
    with pytest.raises(ValueError, match="sensitive attribute race, but this project uses sex"):
        read_simulation(path, dataset="compas", sensitive="sex", metric="f1")
    with pytest.raises(ValueError, match=r"columns \['worst_group_accuracy_x'\] are missing"):
        read_simulation(path, dataset="compas", sensitive="race", metric="worst_group_accuracy_x")
    # a CSV project is matched by the file's stem, as simulate --csv records it
    small_run.assign(dataset="fair", sensitive="age").to_csv(path, index=False)
    assert len(read_simulation(path, dataset="csv:fair.csv", sensitive="age", metric="f1")) == len(small_run)
    # older files carry no sensitive column: accepted on their data set alone
    small_run.assign(dataset="compas").to_csv(path, index=False)
    assert len(read_simulation(path, dataset="compas", sensitive="anything", metric="f1")) == len(small_run)
    path.write_bytes(b"\x00\xff not a table")
    with pytest.raises(ValueError):
        read_simulation(path, dataset="compas", sensitive="race", metric="f1")


def test_a_simulation_over_the_upload_limit_is_refused_before_it_is_read(small_run, tmp_path, monkeypatch):
    from fairal.research.simulate import read_simulation

    path = tmp_path / "simulation.csv"
    small_run.assign(dataset="compas", sensitive="race").to_csv(path, index=False)
    monkeypatch.setenv("FAIRAL_MAX_CSV_BYTES", str(path.stat().st_size - 1))
    with pytest.raises(ValueError, match=f"the file is {path.stat().st_size:,} bytes, over the limit"):
        read_simulation(path, dataset="compas", sensitive="race", metric="f1")

    class Upload(io.BytesIO):  # what Streamlit's uploader hands the Curves page: a file with a size
        size = path.stat().st_size

    with pytest.raises(ValueError, match="over the limit"):
        read_simulation(Upload(path.read_bytes()), dataset="compas", sensitive="race", metric="f1")
    monkeypatch.setenv("FAIRAL_MAX_CSV_BYTES", str(path.stat().st_size))
    assert len(read_simulation(Upload(path.read_bytes()), dataset="compas", sensitive="race", metric="f1")) == len(small_run)


@pytest.mark.parametrize("learner", sorted(TRAINERS))
def test_simulate_runs_every_trainer_the_app_offers(compas, learner):
    """FR-Train and FORML included: they get the seed examples as their clean validation set."""
    fast = {"frtrain": {"epochs": 3}, "forml": {"epochs": 3}, "irw": {"epochs": 3}, "irwo": {"epochs": 3},
            "cvar": {"epochs": 3}, "erm": {}, "head": {}, "fairlearn": {"max_iter": 5}}
    frame = simulate(compas, ["random"], seeds=[0], budgets=[0, 20], n_initial=30, representation="raw",
                     learner=learner, trainer_params={learner: fast.get(learner, {})})
    assert list(frame["trainer"]) == [learner, learner] and list(frame["budget"]) == [0, 20]
    assert frame["f1"].between(0, 1).all() and (frame["fit_seconds"] > 0).all()
