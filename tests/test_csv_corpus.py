"""A corpus of bad (and good) CSV files, each with the outcome it deserves, through ``load_csv`` and
through the Setup page's preview: the same file gets the same verdict and the same words in both.

The limits are set small for the whole module (``FAIRAL_MAX_CSV_BYTES`` = 6,000 bytes,
``FAIRAL_MAX_CSV_ROWS`` = 300 rows), so the oversize files are small too.
"""

from __future__ import annotations

import io
import os
import random
import re
import time
from dataclasses import dataclass, field

import pytest
from streamlit.testing.v1 import AppTest

from fairal import auth
from fairal.cli import main as cli_main
from fairal.datasets import DatasetError, csv_limits, load_csv, read_csv_table
from fairal.store import Store

from test_app import APP, plain

MAX_BYTES, MAX_ROWS = 6_000, 300
ADMIN, PASSWORD = "corpus-admin", "correct horse battery"


def rows(n: int, *, header: str = "age,group,y", start: int = 0) -> bytes:
    """``header`` then n rows of age, group (a/b), label (0/1)."""
    lines = [header] + [f"{20 + (i % 50)},{'ab'[i % 2]},{(i // 2) % 2}" for i in range(start, start + n)]
    return ("\n".join(lines) + "\n").encode()


def junk(n: int, seed: int = 0) -> bytes:
    return bytes(random.Random(seed).randrange(256) for _ in range(n))


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    #: a regular expression the refusal's message matches, or None: the file loads
    refused: str | None
    #: rows loaded (when it loads)
    loaded: int | None = None
    #: load_csv's arguments besides label="y", sensitive="group"
    options: dict = field(default_factory=dict)
    #: the Setup page can reach it (it offers only the file's own columns)
    on_page: bool = True


GOOD = rows(20)
CASES = [
    Case("good", GOOD, None, 20),
    Case("good with a BOM", b"\xef\xbb\xbf" + GOOD, None, 20),
    Case("CRLF line ends", GOOD.replace(b"\n", b"\r\n"), None, 20),
    Case("quoted commas and line breaks", b'age,group,y,note\n1,a,0,"x, y"\n2,b,1,"two\nlines"\n3,a,1,z\n4,b,0,w\n',
         None, 4),
    Case("formula-like values", b"age,group,y,note\n1,a,0,=HYPERLINK(\"http://x\")\n2,b,1,+1\n3,a,1,@x\n4,b,0,-2\n",
         None, 4),
    Case("short row: missing values", b"age,group,y\n1,a,0\n2,b\n3,a,1\n4,b,0\n", None, 3),
    Case("a unique id column", b"id,age,group,y\n7,1,a,0\n3,2,b,1\n9,3,a,1\n1,4,b,0\n", None, 4,
         {"id_column": "id"}),
    Case("exactly the row limit", rows(MAX_ROWS), None, MAX_ROWS),
    Case("Latin-1", "age,group,y\n1,José,0\n2,b,1\n".encode("latin-1"),
         r"file is not UTF-8 text \(byte 0xe9 at position 17\)"),
    Case("Windows-1252 quotes", "age,group,y\n1,“a”,0\n2,b,1\n".encode("cp1252"), "file is not UTF-8 text"),
    Case("UTF-16", GOOD.decode().encode("utf-16"), r"file is not UTF-8 text \(it looks like UTF-16\)"),
    Case("binary junk", junk(2_000), "file is not UTF-8 text"),
    Case("a PNG", b"\x89PNG\r\n\x1a\n" + junk(500, 1), "file is not UTF-8 text"),
    Case("NUL bytes in UTF-8", b"age,group,y\n1,a\x00,0\n2,b,1\n", "file holds a NUL character"),
    Case("empty file", b"", "file is empty"),
    Case("blank lines only", b"\n \n\n", "file is empty"),
    Case("header only", b"age,group,y\n", "file has a header but no rows"),
    Case("duplicate columns", b"age,age,group,y\n1,2,a,0\n3,4,b,1\n5,6,a,1\n",
         r"the header names a column more than once: 'age' \(2 times\)"),
    Case("duplicate columns after a space", b"age, age,group,y\n1,2,a,0\n3,4,b,1\n",
         r"the header names a column more than once: 'age'"),
    Case("duplicate label columns", b"age,group,y,y\n1,a,0,1\n3,b,1,0\n", "names a column more than once: 'y'"),
    Case("duplicate ids", b"id,age,group,y\n1,20,a,0\n2,30,b,1\n1,40,a,1\n3,50,b,0\n",
         r"id column 'id' has duplicate ids, e.g. 1 \(1 duplicate rows\)", options={"id_column": "id"}),
    Case("ids that are not integers", b"id,age,group,y\nr1,20,a,0\nr2,30,b,1\n", "id column 'id' must hold integers",
         options={"id_column": "id"}),
    Case("a missing id", b"id,age,group,y\n1,20,a,0\n,30,b,1\n", "id column 'id' has 1 missing values",
         options={"id_column": "id"}),
    Case("ragged: a row too long", b"age,group,y\n1,a,0\n2,b,1,9\n3,a,1\n",
         "line 3 has 4 fields where the header has 3"),
    Case("an unclosed quote", b'age,group,y\n1,"a,0\n2,b,1\n', "a quoted value .* is never closed"),
    Case("semicolons", b"age;group;y\n1;a;0\n2;b;1\n", "its values seem separated by ';', not commas"),
    Case("tabs", b"age\tgroup\ty\n1\ta\t0\n2\tb\t1\n", r"its values seem separated by '\\t'"),
    Case("a label with one value", b"age,group,y\n1,a,0\n2,b,0\n3,a,0\n", r"label column 'y' has only one value \('0'\)"),
    Case("a label with three values", b"age,group,y\n1,a,0\n2,b,1\n3,a,2\n", "label column '?y'? has 3 values"),
    Case("one group", b"age,group,y\n1,a,0\n2,a,1\n", "sensitive column 'group' has only one group"),
    Case("an empty label column", b"age,group,y\n1,a,\n2,b,\n", r"label column 'y' is empty"),
    Case("one complete row", b"age,group,y\n1,a,0\n2,,1\n3,b,\n", r"only 1 row\(s\) have both a label"),
    Case("no such label column", GOOD, "label column 'target' not found; available columns: 'age', 'group', 'y'",
         options={"label": "target"}, on_page=False),
    Case("the id column is the label", GOOD, "the id column 'y' cannot also be the label",
         options={"id_column": "y"}, on_page=False),
    Case("over the size limit", rows(1_000), r"file is larger than the limit of 5\.9 KiB \(6,000 bytes\)"),
    Case("over the row limit", rows(MAX_ROWS + 1), "file has more than 300 rows, the limit"),
]


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    monkeypatch.setenv("FAIRAL_MAX_CSV_BYTES", str(MAX_BYTES))
    monkeypatch.setenv("FAIRAL_MAX_CSV_ROWS", str(MAX_ROWS))


def test_the_corpus_is_the_size_it_claims():
    assert len(CASES) >= 33 and len({c.name for c in CASES}) == len(CASES)
    assert len(rows(1_000)) > MAX_BYTES > len(rows(MAX_ROWS + 1))  # the row case is under the size limit


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_load_csv_gives_each_file_its_outcome(case):
    arguments = {"label": "y", "sensitive": "group", **case.options}
    if case.refused is None:
        dataset = load_csv(io.BytesIO(case.content), **arguments)
        assert len(dataset) == case.loaded
        assert "id" not in dataset.feature_names and not any(f.endswith(".1") for f in dataset.feature_names)
    else:
        with pytest.raises(DatasetError, match=case.refused):
            load_csv(io.BytesIO(case.content), **arguments)


# --- limits -------------------------------------------------------------------------------


class CountingReader(io.BytesIO):
    """An upload that counts the bytes asked of it."""

    requested = 0

    def read(self, size=-1):
        data = super().read(size)
        self.requested += len(data)
        return data


def test_an_oversize_upload_is_refused_after_reading_one_byte_past_the_limit():
    upload = CountingReader(rows(50_000))  # about 500 KB
    with pytest.raises(DatasetError, match="over the limit|larger than the limit"):
        read_csv_table(upload, max_bytes=1_000)
    assert upload.requested == 1_001


def test_an_oversize_file_on_disk_is_refused_before_it_is_opened(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as sparse:  # 8 GiB that take no disk space: reading them would
        sparse.truncate(8 * 1024 ** 3)  # take minutes and all the memory
    started = time.perf_counter()
    with pytest.raises(DatasetError, match=r"file is 8\.0 GiB, over the limit of 5\.9 KiB"):
        load_csv(path, label="y", sensitive="group")
    assert time.perf_counter() - started < 1


def test_arguments_override_the_environment_and_bad_settings_are_named(monkeypatch):
    assert csv_limits() == csv_limits(MAX_BYTES, MAX_ROWS)
    assert csv_limits(max_rows=10).max_rows == 10
    assert len(load_csv(io.BytesIO(rows(400)), label="y", sensitive="group", max_bytes=10**6, max_rows=400)) == 400
    monkeypatch.setenv("FAIRAL_MAX_CSV_ROWS", "lots")
    with pytest.raises(DatasetError, match="FAIRAL_MAX_CSV_ROWS must be a whole number, got 'lots'"):
        csv_limits()
    monkeypatch.delenv("FAIRAL_MAX_CSV_ROWS")
    monkeypatch.delenv("FAIRAL_MAX_CSV_BYTES")
    assert csv_limits() == csv_limits(100 * 1024 ** 2, 500_000)  # the defaults the README names
    with pytest.raises(DatasetError, match="positive whole number, got 0"):
        csv_limits(max_bytes=0)


# --- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(("content", "flags", "message"), [
    (b"id,age,group,y\n1,20,a,0\n1,30,b,1\n", ["--id-column", "id"], "id column 'id' has duplicate ids"),
    (b"age,age,group,y\n1,2,a,0\n3,4,b,1\n", [], "names a column more than once: 'age'"),
    (rows(50), ["--max-csv-rows", "20"], "file has more than 20 rows"),
    (rows(50), ["--max-csv-bytes", "100"], r"file is 362 bytes, over the limit of 100 bytes"),
])
def test_simulate_refuses_the_csv_with_the_loaders_words(tmp_path, capsys, content, flags, message):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    code = cli_main(["simulate", "--csv", str(path), "--label", "y", "--sensitive", "group", *flags,
                     "--methods", "random", "--seeds", "1", "--budget", "4", "--out", str(tmp_path / "out")])
    assert code == 2
    assert re.search("error: .*" + message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


# --- the Setup page's preview -------------------------------------------------------------


@pytest.fixture
def setup_page(tmp_path, monkeypatch):
    """The Setup page, signed in as an admin, "Upload a CSV" chosen, on a store with one small
    project (so that no demo project is prepared)."""
    path = tmp_path / "fairal.db"
    monkeypatch.setenv("FAIRAL_DB", str(path))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    from fairal.projects import CsvSource, ProjectSettings, create_project
    with Store(path) as store:
        auth.create_account(store, ADMIN, PASSWORD, role="admin")
        create_project(store, ProjectSettings(name="small", dataset="csv", budget=5, n_initial=4),
                       csv=CsvSource(data=rows(200), label="y", sensitive="group", filename="small.csv"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="login_name").input(ADMIN)
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    at.switch_page("app_pages/setup.py").run()
    at.radio(key="setup_source").set_value("Upload a CSV").run()
    assert not at.exception
    return at


def preview_outcome(at: AppTest, case: Case) -> tuple[str, str]:
    """("refused", the error) or ("loaded", the summary) for the case's file on the Setup page,
    choosing the columns ``y`` and ``group`` when the page offers them (the id column as suggested)."""
    at.file_uploader(key="setup_upload").set_value((f"{case.name}.csv", case.content, "text/csv")).run()
    for key, column in (("setup_csv_label", "y"), ("setup_csv_sensitive", "group")):
        widgets = [w for w in at.selectbox if w.key == key]
        if widgets and column in widgets[0].options and widgets[0].value != column:
            widgets[0].select(column).run()
    assert not at.exception, at.exception
    if at.error:
        return "refused", " ".join(plain(e.value) for e in at.error)
    summary = [plain(m.value) for m in at.markdown if " rows** · unlabeled pool" in m.value]
    return ("loaded", summary[0]) if summary else ("nothing", "")


def test_the_setup_preview_gives_each_file_the_loaders_outcome(setup_page):
    at, outcomes = setup_page, {}
    for case in (c for c in CASES if c.on_page):
        outcomes[case.name] = verdict, text = preview_outcome(at, case)
        if case.refused is None:
            assert verdict == "loaded" and f"**{case.loaded:,} rows**" in text, (case.name, verdict, text)
        else:
            assert verdict == "refused" and re.search(case.refused, text), (case.name, verdict, text)
            assert "codec" not in text and "Error tokenizing" not in text  # pandas' own words never
    assert len(outcomes) == sum(c.on_page for c in CASES)


def test_setup_suggests_the_id_column_and_passes_it_to_the_project(setup_page):
    at = setup_page
    content = b"id,age,group,y\n" + b"".join(f"{100 + i},{20 + i % 9},{'ab'[i % 2]},{i // 2 % 2}\n".encode()
                                             for i in range(120))
    at.file_uploader(key="setup_upload").set_value(("people.csv", content, "text/csv")).run()
    assert at.selectbox(key="setup_csv_id").value == "id"
    assert "id" not in at.multiselect(key="setup_csv_display").options  # neither shown nor a feature
    assert not at.error
    at.number_input(key="setup_budget").set_value(5)
    at.button(key="setup_create").click().run()
    assert not at.exception and at.success
    with Store(os.environ["FAIRAL_DB"]) as store:
        project = next(p for p in store.projects() if p["name"] != "small")
        assert project["config"]["csv"]["id_column"] == "id"
        ids = store.item_ids_all(int(project["id"]))
        assert ids and set(ids) <= set(range(100, 220))  # the file's ids, not row numbers 0, 1, ...


def test_setup_without_an_id_column_numbers_the_rows(setup_page):
    at = setup_page
    at.file_uploader(key="setup_upload").set_value(("plain.csv", rows(40), "text/csv")).run()
    assert at.selectbox(key="setup_csv_id").value is None
    assert "**40 rows**" in plain(" ".join(m.value for m in at.markdown))


def test_curves_refuses_a_simulation_file_over_the_size_limit(setup_page):
    at = setup_page
    at.switch_page("app_pages/curves.py").run()
    at.file_uploader(key="curves_simulation").set_value(("simulation.csv", b"method,budget\n" * 500, "text/csv")).run()
    assert not at.exception
    assert "over the limit of 6,000 bytes" in plain(at.error[0].value)


def test_a_column_named_like_an_id_but_not_named_as_one_is_logged(caplog):
    content = b"id,age,group,y\n1,20,a,0\n1,30,b,1\n2,40,a,1\n"
    dataset = load_csv(io.BytesIO(content), label="y", sensitive="group")
    assert "id" in dataset.feature_names  # as asked: no id column, so a feature
    assert "column 'id' looks like a row id but is used as a feature" in caplog.text
