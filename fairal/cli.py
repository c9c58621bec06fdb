"""``python -m fairal …``: the command line. It calls the same library functions as the app."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np
import pandas as pd

__all__ = ["main", "baseline"]


def _cmd_datasets_list(args) -> int:
    from fairal.datasets import list_datasets

    frame = pd.DataFrame(list_datasets())
    print(frame.to_string(index=False))
    return 0


def _cmd_datasets_describe(args) -> int:
    from fairal.datasets import load

    kwargs = {"sensitive": args.sensitive} if args.sensitive else {}
    dataset = load(args.name, **kwargs)
    summary = {
        "dataset": dataset.name, "rows": len(dataset), "features": dataset.X.shape[1],
        "label": dataset.label_name, "positive class": dataset.classes[-1],
        "sensitive attribute": dataset.sensitive,
    }
    if args.json:
        summary["base_rates"] = dataset.base_rates().reset_index().to_dict(orient="records")
        print(json.dumps(summary, indent=2, default=str))
        return 0
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    print()
    print(f"Base rates by {dataset.sensitive} (rate of '{dataset.classes[-1]}'):")
    print(dataset.base_rates().to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def baseline(dataset_name: str = "adult", *, sensitive: str | None = None, seeds=range(5),
             model: str = "logistic") -> pd.DataFrame:
    """ERM trained on PANDA's meta-train half, evaluated on its test quarter, one row per seed."""
    from fairal.datasets import load, panda_split
    from fairal.metrics import evaluate
    from fairal.trainers import ERMTrainer

    dataset = load(dataset_name, **({"sensitive": sensitive} if sensitive else {}))
    rows = []
    for seed in seeds:
        split = panda_split(len(dataset), seed=seed)
        start = time.perf_counter()
        fitted = ERMTrainer(model, random_state=seed).fit(dataset.subset(split.meta_train))
        seconds = time.perf_counter() - start
        test = dataset.subset(split.test)
        scores = evaluate(test.y, fitted.predict(test.X), sensitive_features=test.group)
        rows.append({"seed": seed, "fit_seconds": seconds, **scores})
    return pd.DataFrame(rows)


def _cmd_baseline(args) -> int:
    frame = baseline(args.dataset, sensitive=args.sensitive, seeds=range(args.seeds), model=args.model)
    columns = ["accuracy", "f1", "demographic_parity_difference", "demographic_parity_to_overall",
               "equalized_odds_difference", "error_rate_balance", "disparate_impact_ratio", "fit_seconds"]
    summary = pd.DataFrame({"mean": frame[columns].mean(),
                            "s.e.": frame[columns].std(ddof=1) / np.sqrt(len(frame)) if len(frame) > 1 else np.nan})
    print(f"ERM ({args.model}) on {args.dataset}: trained on PANDA's meta-train half, "
          f"evaluated on its test quarter, {len(frame)} seeds")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.output:
        frame.to_csv(args.output, index=False)
        print(f"per-seed rows written to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fairal", description="fairal: fair active labeling.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    datasets = commands.add_parser("datasets", help="list and describe the built-in data sets")
    datasets_commands = datasets.add_subparsers(dest="datasets_command", required=True, metavar="ACTION")
    datasets_commands.add_parser("list", help="the built-in data sets").set_defaults(func=_cmd_datasets_list)
    describe = datasets_commands.add_parser("describe", help="rows, features and base rates by group")
    describe.add_argument("name", help="adult, compas, german, synthetic or digits")
    describe.add_argument("--sensitive", help="sensitive attribute (e.g. sex, race)")
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    describe.set_defaults(func=_cmd_datasets_describe)

    base = commands.add_parser("baseline", help="ERM on PANDA's split: accuracy, F1 and disparities on the test set")
    base.add_argument("--dataset", default="adult")
    base.add_argument("--sensitive", default=None)
    base.add_argument("--model", default="logistic", choices=["logistic", "mlp"])
    base.add_argument("--seeds", type=int, default=5, help="number of split seeds (0..N-1)")
    base.add_argument("--output", help="write the per-seed table to this CSV file")
    base.set_defaults(func=_cmd_baseline)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
