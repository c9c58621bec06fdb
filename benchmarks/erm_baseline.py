"""ERM logistic regression on PANDA's split for each built-in data set (5 split seeds).

Trained on the meta-train half, evaluated on the test quarter. Reference (SOURCES.md):
scikit-learn on a random half of Adult gives accuracy .849, F1 .670, DP difference .19.

    python benchmarks/erm_baseline.py     # writes benchmarks/results/erm_baseline.md
"""

from pathlib import Path

import numpy as np
import pandas as pd

from fairal.cli import baseline

COLUMNS = ["accuracy", "f1", "demographic_parity_difference", "demographic_parity_to_overall",
           "error_rate_balance", "disparate_impact_ratio", "fit_seconds"]


def main() -> None:
    rows = []
    for name, sensitive in [("adult", "sex"), ("adult", "race"), ("compas", "race"), ("compas", "sex"),
                            ("german", "sex")]:
        frame = baseline(name, sensitive=sensitive, seeds=range(5))
        mean, se = frame[COLUMNS].mean(), frame[COLUMNS].std(ddof=1) / np.sqrt(len(frame))
        rows.append({"dataset": name, "sensitive": sensitive,
                     **{c: f"{mean[c]:.3f} ± {se[c]:.3f}" for c in COLUMNS}})
    table = pd.DataFrame(rows)
    out = Path(__file__).parent / "results" / "erm_baseline.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("# ERM logistic regression on PANDA's split (mean ± s.e. over split seeds 0-4)\n\n"
                   "Command: `python benchmarks/erm_baseline.py`\n\n" + table.to_markdown(index=False) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
