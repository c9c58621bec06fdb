"""``python -m fairal crowd import``: a crowd CSV with a column mapping, from the command line."""

from fairal.cli import main
from fairal.projects import ProjectSettings, create_project
from fairal.store import Store


def test_crowd_import_takes_a_column_mapping(tmp_path, capsys):
    db = tmp_path / "fairal.db"
    with Store(db) as store:
        pid = create_project(store, ProjectSettings(name="compas", dataset="compas", sensitive="race", budget=30,
                                                    n_initial=20, scale="confidence4"))
        items = store.item_ids(pid, "pool")[:4]
    path = tmp_path / "amt.csv"
    path.write_text("row,rating_1,worker_id_1,rating_2,worker_id_2\n" + "".join(f"{i},4,a,1,b\n" for i in items))
    assert main(["crowd", "import", str(path), "--project", "compas", "--db", str(db)]) == 2
    assert "amt.csv: column worker_id_1 has no matching answer_1 column" in capsys.readouterr().err
    assert main(["crowd", "import", str(path), "--project", "compas", "--db", str(db),
                 "--column", "item=row", "--column", "answer=rating"]) == 0
    assert "imported 8 answers from amt.csv into 'compas'" in capsys.readouterr().out
    with Store(db) as store:
        stored = store.crowd_answers(pid)
    assert len(stored) == 8 and {r["item_id"] for r in stored} == set(items)
    assert main(["crowd", "import", str(path), "--project", "compas", "--db", str(db), "--column", "item"]) == 2
    assert "--column takes ROLE=NAME" in capsys.readouterr().err
