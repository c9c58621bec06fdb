"""Issue 11's goal: no function in fairal/ is over 60 lines or over complexity 15.

ruff checks the complexity half (C90 with ``max-complexity = 15`` in pyproject.toml); it has no
rule for length, so this file checks that half. A function's length runs from its ``def`` line to
its last line, docstring, comments and blank lines included (decorators are not counted).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fairal"
MAX_LINES = 60


def _functions(node: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function and method under ``node``, nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield name, child
            yield from _functions(child, name + ".")
        else:
            yield from _functions(child, prefix)


def _lengths():
    """(where, name, lines) of every function in fairal/."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _functions(tree):
            assert node.end_lineno is not None
            yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", name, node.end_lineno - node.lineno + 1


def test_no_function_in_fairal_is_over_60_lines():
    too_long = [f"{where} {name} ({lines} lines)" for where, name, lines in _lengths() if lines > MAX_LINES]
    assert not too_long, f"{len(too_long)} function(s) over {MAX_LINES} lines; split them:\n" + "\n".join(too_long)


def test_the_check_reads_the_whole_package():
    names = {name for _, name, _ in _lengths()}
    # A method, a nested function and a plain function, from three corners of the package.
    assert {"FRTrainTrainer._fit", "build_parser", "load_csv"} <= names
    assert len(names) > 500
