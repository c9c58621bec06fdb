import json
import subprocess
import sys

from fairal.cli import main


def test_datasets_list_names_every_builtin(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("adult", "compas", "german", "synthetic", "digits"):
        assert name in out


def test_datasets_describe_gives_rows_and_base_rates(capsys):
    assert main(["datasets", "describe", "adult", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 45222
    rates = {row["group"]: row["positive_rate"] for row in summary["base_rates"]}
    assert round(rates["Male"], 3) == 0.312 and round(rates["Female"], 3) == 0.114


def test_describe_text_output(capsys):
    assert main(["datasets", "describe", "compas", "--sensitive", "sex"]) == 0
    out = capsys.readouterr().out
    assert "6172" in out and "Female" in out


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["datasets", "describe", "mnist"]) == 2
    assert "mnist" in capsys.readouterr().err


def test_baseline_runs(capsys):
    assert main(["baseline", "--dataset", "german", "--seeds", "2"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "fairal", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "datasets" in result.stdout
