"""The flow from an annotator's key press to a stored curve point, traced (README, "Architecture").

A profiler hook records every call that crosses from one module of the project into another. A
package (``fairal.store``, ``fairal.trainers``, ``fairal.strategies``) counts as one module,
entered through its front door; a run of calls from one module into the same other module, with
nothing else in between, is one entry (one visit: "commit these rows", "read these inputs").
"""

from __future__ import annotations

import collections
import sys

import pytest

from fairal.labeling import LabelingSession
from fairal.projects import ProjectSettings, create_project
from fairal.retrainer import Retrainer
from fairal.store import Store

PAGE = "app.app_pages.label"
PACKAGES = ("fairal.store", "fairal.trainers", "fairal.strategies", "fairal.datasets", "fairal.panda")

#: The modules a key press passes through with inline retraining (no background worker), in order;
#: the README's drawing.
INLINE = ["app.app_pages.label", "fairal.labeling", "fairal.store", "fairal.projects", "fairal.crowd",
          "fairal.trainers", "fairal.metrics", "fairal.strategies"]


def _module(frame) -> str | None:
    name = frame.f_globals.get("__name__", "")
    if name == PAGE:
        return name
    if not name.startswith("fairal"):
        return None
    return next((p for p in PACKAGES if name == p or name.startswith(p + ".")), name)


def _trace(action) -> list[tuple[str | None, str]]:
    """(caller, callee) of each entry into a module while ``action()`` runs, runs collapsed."""
    entries: list[tuple[str | None, str]] = []

    def hook(frame, event, arg):
        if event != "call" or (callee := _module(frame)) is None:
            return
        caller, outer = None, frame.f_back
        while outer is not None and (caller := _module(outer)) is None:
            outer = outer.f_back
        if caller != callee and (not entries or entries[-1] != (caller, callee)):
            entries.append((caller, callee))

    sys.setprofile(hook)
    try:
        action()
    finally:
        sys.setprofile(None)
    return entries


@pytest.fixture
def labeled():
    """A fresh German project, an annotator's session and the item in front of them."""
    with Store(memory=True) as store:
        pid = create_project(store, ProjectSettings(name="g", dataset="german", budget=30, n_initial=20))

        def start(retrain: bool):
            session = LabelingSession(store, pid, "ann", retrain=retrain)
            return store, session, session.next_item()
        yield start


def _key_press(session, item_id: int):
    """Label's on_click callback, as if it ran in the page's module."""
    page = {"__name__": PAGE}
    exec("def key_press(session, item_id):\n    return session.submit(item_id, 1)\n", page)
    return lambda: page["key_press"](session, item_id)


def test_inline_flow_passes_eight_modules_and_reenters_only_the_store_and_the_trainers(labeled):
    store, session, item = labeled(True)
    entries = _trace(_key_press(session, item.item_id))
    assert list(dict.fromkeys(callee for _, callee in entries)) == INLINE
    entered = collections.Counter(callee for _, callee in entries)
    assert {m: n for m, n in entered.items() if n > 1} == {"fairal.store": 3, "fairal.trainers": 2}
    # the trainers: fit + evaluate (one visit), then the strategy asks the fitted model
    assert [caller for caller, callee in entries if callee == "fairal.trainers"] == [
        "fairal.projects", "fairal.strategies"]
    # the store: the checked commit, the training step's one read and its one write
    assert [caller for caller, callee in entries if callee == "fairal.store"] == [
        "fairal.labeling", "fairal.projects", "fairal.projects"]
    assert store.curve_points(session.project.id)[-1]["budget"] == 1


def test_worker_flow_adds_the_retrainer_and_reads_the_store_from_it(labeled):
    store, session, item = labeled(False)
    press = _key_press(session, item.item_id)
    retrainer = Retrainer(":memory:", debounce=0.0)
    retrainer.run_once(store)  # a running worker: its project is open, nothing is out of date

    def flow():
        press()
        retrainer.run_once(store)

    entries = _trace(flow)
    modules = list(dict.fromkeys(callee for _, callee in entries))
    assert set(INLINE) - {"fairal.projects"} < set(modules)
    assert "fairal.retrainer" in modules and "fairal.trainers" in modules
    entered = collections.Counter(callee for _, callee in entries)
    assert entered["fairal.trainers"] == 2 and entered["fairal.labeling"] == 1
    assert store.curve_points(session.project.id)[-1]["budget"] == 1
