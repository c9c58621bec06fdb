"""Text from users and files never renders as a link, an image or HTML.

A store is prepared with hostile names everywhere a person or a file chooses one: the CSV's file
name, its label and sensitive column names, a feature column's name and values, the label values
(the Label page's answer buttons), the groups, the project name and an account name. Setup,
Curves, Label and Annotators are then opened, and every string Streamlit would read as Markdown
(text elements, alerts, widget labels, radio options, st.table cells) is parsed the way Streamlit's
renderer reads it: CommonMark (markdown-it-py here; remark in the browser) and then GitHub's
literal autolinks (``http://…``, ``www.…``, ``a@b.c`` in plain text, with remark-gfm's own patterns).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from fairal import auth
from fairal.projects import CsvSource, ProjectSettings, create_project
from fairal.store import Store

from test_app import APP

sys.path.insert(0, str(Path(APP).parent))
from literal import WORD_JOINER, md  # noqa: E402  (app/ is the pages' import root)

FILE = "[click me](http://evil.example/x).csv"
SENSITIVE = "![i](http://evil.example/pixel.png)"
LABEL = "<a href='http://evil.example'>y</a>"
FEATURE = "<img src=http://evil.example/p.png>"
NO, YES = "[no](javascript:alert(1))", "www.yes.example"
GROUPS = ("a@evil.example", ":red[b] $x$")
PROJECT = "Survey [see](https://evil.example) www.evil.example"
ACCOUNT = "ann![p](http://evil.example/a.png)"
ADMIN, PASSWORD = "escape-admin", "correct horse battery"
HOSTILE = (FILE, SENSITIVE, LABEL, FEATURE, NO, YES, *GROUPS, PROJECT, ACCOUNT)

#: remark-gfm's literal autolinks (mdast-util-gfm-autolink-literal, as bundled by Streamlit 1.67):
#: they are found in text nodes, after the Markdown escapes are read.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.IGNORECASE)
GFM_EMAIL = re.compile(r"(?:^|(?<=[\s\W]))([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def rendered_links(markdown: str) -> list[str]:
    """What in ``markdown`` a GFM renderer would draw as a link, an image or HTML."""
    found, tokens = [], list(PARSER.parse(markdown))
    while tokens:
        token = tokens.pop()
        tokens.extend(token.children or [])
        if token.type in ("link_open", "image", "html_inline", "html_block"):
            found.append(f"{token.type}: {token.content or token.attrs}")
        elif token.type == "text":
            found += [f"autolink: {m.group(0)}" for m in (*GFM_URL.finditer(token.content),
                                                          *GFM_EMAIL.finditer(token.content))]
    return found


@pytest.mark.parametrize("text", HOSTILE)
def test_md_shows_hostile_text_literally(text):
    shown = md(text)
    assert not rendered_links(shown), shown
    rendered = PARSER.renderInline(shown)  # the same characters, nothing but HTML's own escapes
    assert rendered.replace(WORD_JOINER, "").replace("&lt;", "<").replace("&gt;", ">") \
        .replace("&quot;", '"').replace("&amp;", "&") == text


def test_the_checker_sees_what_the_renderer_would_link():
    assert rendered_links("[x](http://a.example)") and rendered_links("![i](http://a.example/p.png)")
    assert rendered_links("see http://a.example") and rendered_links(r"\[x\]\(http\://a\.example\)")  # escaped
    assert rendered_links("www.a.example") and rendered_links("mail a@b.example") and rendered_links("<b>x</b>")
    assert not rendered_links("plain **bold** text")


def markdown_strings(at: AppTest) -> list[tuple[str, str]]:
    """(where, Markdown) for every string of the page Streamlit renders as Markdown."""
    strings = []
    nodes = [at._tree]
    while nodes:
        node = nodes.pop()
        nodes.extend(getattr(node, "children", {}).values())
        kind = getattr(node, "type", "")
        if kind in ("markdown", "caption", "title", "header", "subheader", "success", "error", "warning",
                    "info", "toast", "exception", "latex"):
            strings.append((kind, str(node.value)))
        label = getattr(node, "label", None)
        if isinstance(label, str):
            strings.append((f"{kind} label", label))
        if kind == "radio":
            strings += [("radio option", str(o)) for o in node.options]
        if kind == "table":
            frame = node.value
            cells = [*map(str, frame.columns), *map(str, frame.index), *map(str, frame.to_numpy().ravel())]
            strings += [("table cell", c) for c in cells]
    return strings


def leaks(at: AppTest) -> list[str]:
    return [f"{where}: {text!r} -> {found}" for where, text in markdown_strings(at)
            for found in [rendered_links(text)] if found]


@pytest.fixture
def hostile_db(tmp_path, monkeypatch):
    path = tmp_path / "fairal.db"
    monkeypatch.setenv("FAIRAL_DB", str(path))
    monkeypatch.setenv("FAIRAL_WORKER", "off")
    header = ",".join(f'"{c}"' for c in ("age", FEATURE, SENSITIVE, LABEL))
    lines = [header] + [f'{20 + i % 40},"**bold** http://evil.example/v{i % 3}",{GROUPS[i % 2]},"{(NO, YES)[i // 2 % 2]}"'
                        for i in range(200)]
    data = ("\n".join(lines) + "\n").encode()
    with Store(path) as store:
        admin = auth.create_account(store, ADMIN, PASSWORD, role="admin")
        project = create_project(store, ProjectSettings(name=PROJECT, dataset="csv", budget=10, n_initial=4),
                                 csv=CsvSource(data=data, label=LABEL, sensitive=SENSITIVE, filename=FILE))
        annotator = auth.create_account(store, ACCOUNT, PASSWORD, by=admin)
        store.add_member(project, annotator.id)
    return path


def signed_in() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.text_input(key="login_name").input(ADMIN)
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert not at.exception
    return at


@pytest.mark.parametrize("page", ["setup", "curves", "label", "annotators"])
def test_no_page_renders_a_users_text_as_a_link_or_image(hostile_db, page):
    at = signed_in()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    shown = " ".join(text for _, text in markdown_strings(at))
    if page == "label":  # the hostile label values are on the answer buttons, the data in the table
        assert {b.label for b in at.button if b.key and b.key.startswith("label_value_")} == {md(NO), md(YES)}
        assert any(md(f"**bold** http://evil.example/v{k}") in shown for k in range(3))
        at.button(key="label_value_0").click().run()  # the "labeled as …" caption names the value
        assert not at.exception
    if page == "setup":  # the current project's caption names the file and the sensitive column
        assert md(SENSITIVE) in shown and md(FILE) in shown
        at.radio(key="setup_source").set_value("Upload a CSV").run()
        at.file_uploader(key="setup_upload").set_value((FILE, b"a,a\n1,2\n", "text/csv")).run()
        assert md(FILE) in " ".join(e.value for e in at.error)  # the file name in the refusal
    if page == "annotators":  # a new account's name in the success message
        at.text_input(key="ann_new_name").input("bob www.evil.example")
        at.text_input(key="ann_new_password").input(PASSWORD)
        at.button(key="ann_create_submit").click().run()
        assert md("bob www.evil.example") in at.success[0].value
    page_leaks = leaks(at)
    assert not page_leaks, "\n".join(page_leaks)


def test_the_app_has_one_markdown_escape():
    """Every page escapes through literal.md: app/state.py no longer keeps its own (it let GFM literal
    autolinks through in the Curves and Crowd titles and Setup's PANDA caption)."""
    import state
    assert state.md is md
    for path in Path(__file__).resolve().parents[1].joinpath("app").rglob("*.py"):
        assert "def md(" not in path.read_text() or path.name == "literal.py", path


def test_curves_draws_a_simulations_method_names_as_typed(hostile_db):
    """Plotly draws <a href> in trace names: a method name from an uploaded simulation.csv must not link."""
    import json

    with Store(hostile_db) as store:
        row = store.project_by_name(PROJECT)
    method = '<a href="http://evil.example">random</a>'
    lines = [f"method,budget,seed,f1,{row['metric']},dataset,sensitive"]
    quoted = '"' + method.replace('"', '""') + '"'
    lines += [f'{quoted},{b},{s},0.5,0.1,"csv:{FILE}","{SENSITIVE}"' for b in (5, 10) for s in (0, 1)]
    at = signed_in()
    at.switch_page("app_pages/curves.py").run()
    at.file_uploader(key="curves_simulation").set_value(("simulation.csv", "\n".join(lines).encode(), "text/csv"))
    at.run()
    assert not at.exception and not at.error
    names = [trace.get("name", "") for chart in at.get("plotly_chart")
             for trace in json.loads(chart.proto.spec)["data"]]
    assert '&lt;a href="http://evil.example"&gt;random&lt;/a&gt;' in names
    assert not [n for n in names if "<a" in n]
