import argparse
import json
import subprocess
import sys

import pytest

from fairal.cli import build_parser, main


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


@pytest.mark.parametrize("command", [["--help"], ["simulate", "--help"], ["train-policy", "--help"]])
def test_help_imports_no_heavy_library(command):
    """`--help` answers at once: torch, scikit-learn, pandas and numpy load only inside the commands."""
    code = (f"import sys\nfrom fairal.cli import main\ntry:\n    main({command!r})\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('torch', 'sklearn', 'pandas', 'numpy') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage:" in result.stdout
    assert result.stdout.splitlines()[-1] == "[]"


def test_datasets_without_an_action_lists_them(capsys):
    assert main(["datasets"]) == 0
    assert "compas" in capsys.readouterr().out


def _options(parser, path=()):
    """(command path, option) for every option of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and action.dest != "help":
            yield path, action


def test_every_option_has_help_and_defaults_show(capsys):
    options = list(_options(build_parser()))
    assert len(options) > 40
    assert [(path, action.option_strings) for path, action in options if not action.help] == []
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # the help's line breaks fall anywhere
    assert "final budget B (default: 400)" in shown and "(default: random,entropy,fairlearn)" in shown
    assert "(default: None)" not in shown


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--methods", "random,oracle"], "error: --methods: unknown method oracle; choose from random"),
        (["plot-simulation", "no-such-folder"], "error: no simulation.csv in no-such-folder"),
        (["baseline", "--seeds", "0"], "error: argument --seeds: needs a whole number ≥ 1, got '0'"),
        (["datasets", "describe", "adult", "--sensitive", "age"], "error: sensitive must be one of"),
    ],
)
def test_errors_are_one_line_and_exit_code_2(argv, message):
    result = subprocess.run([sys.executable, "-m", "fairal", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
