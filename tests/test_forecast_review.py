"""Labels-to-constraint forecast, and the suspicious-label review loop on real data."""

import numpy as np
import pandas as pd
import pytest

from fairal import auth
from fairal.forecast import labels_to_constraint
from fairal.labeling import LabelingSession
from fairal.projects import ProjectSettings, create_project
from fairal.store import Store


def curve(budgets, values, f1=None):
    return pd.DataFrame({"budget": budgets, "trainer": "erm", "dp": values,
                         "f1": f1 if f1 is not None else np.linspace(0.5, 0.6, len(budgets))})


def test_forecast_recovers_a_log_trend():
    budgets = np.array([25, 50, 100, 150, 200])
    values = 0.30 - 0.04 * np.log1p(budgets)  # reaches 0.04 at expm1(6.5) ≈ 664
    result = labels_to_constraint(curve(budgets, values), metric="dp", rho=0.04)
    assert result.more_labels == pytest.approx(664 - 200, abs=3)
    assert result.low <= result.more_labels <= result.high
    assert 0.6 < result.f1_then < 0.7
    capped = labels_to_constraint(curve(budgets, values), metric="dp", rho=0.04, max_budget=500)
    assert capped.more_labels is None and "within the pool" in capped.message


def test_forecast_says_so_when_not_falling_or_already_met_or_too_short():
    rising = labels_to_constraint(curve([10, 20, 30, 40], [0.1, 0.12, 0.13, 0.15]), metric="dp", rho=0.04)
    assert rising.more_labels is None and "not falling" in rising.message
    met = labels_to_constraint(curve([10, 20, 30, 40], [0.1, 0.08, 0.05, 0.03]), metric="dp", rho=0.04)
    assert met.more_labels == 0
    short = labels_to_constraint(curve([10, 20], [0.2, 0.1]), metric="dp", rho=0.04)
    assert short.more_labels is None and "need" in short.message
    ratio = labels_to_constraint(curve([10, 50, 100, 200], [0.5, 0.6, 0.65, 0.7]), metric="dp", rho=0.8,
                                 higher_is_better=True)
    assert ratio.more_labels and ratio.more_labels > 0


def test_forecast_reads_the_simulation():
    sim = pd.DataFrame({"method": "random", "seed": [0, 0, 1, 1], "budget": [100, 400, 100, 400],
                        "dp": [0.10, 0.03, 0.12, 0.05]})
    result = labels_to_constraint(curve([25, 50, 100, 150], [0.2, 0.18, 0.15, 0.14]), metric="dp", rho=0.04,
                                  simulation=sim, strategy="random")
    assert result.simulated_budget == 400


def test_frtrain_flags_flipped_labels_for_review():
    with Store(memory=True) as store:
        admin = auth.create_account(store, "root", "correct horse battery", role="admin")
        pid = create_project(store, ProjectSettings(name="c", dataset="compas", strategy="random", budget=300,
                                                    n_initial=100, trainers=("frtrain",)))
        session = LabelingSession(store, pid, "ann", retrain=False)
        data = session.project.dataset
        answered = []
        for _ in range(200):
            item = session.next_item()
            answered.append(item.item_id)
            session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))
        # the annotator got 30 of 200 labels wrong: FR-Train's robustness discriminator should doubt them
        flipped = set(np.random.default_rng(0).choice(answered, size=30, replace=False).tolist())
        ann = store.annotator_by_name("ann")["id"]
        for item in flipped:
            store.submit_label(pid, item, ann, 1 - int(data.y[data.positions([item])[0]]))
        session.project.retrain(store, rerank=False)
        flagged = store.suspicious_items(pid, limit=30)
        assert len(flagged) == 30 and {row["trainer"] for row in flagged} == {"frtrain"}
        hits = len(flipped & {row["item_id"] for row in flagged})
        assert hits >= 7  # measured 8; a random 30 of 200 finds 4.5 on average
        store.request_review(pid, [row["item_id"] for row in flagged[:3]], requested_by=admin.id, reason="frtrain")
        other = LabelingSession(store, pid, "bob", retrain=False)
        assert other.next_item().item_id in {row["item_id"] for row in flagged[:3]}  # reviews come first
        assert store.suspicious_items(pid, limit=1)[0]["review"] == 1
