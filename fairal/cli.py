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


def _write_figures(figures: dict, folder) -> list[str]:
    """HTML always; PNG when kaleido finds a Chromium (Debian's chromium works)."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, png_ok = [], True
    for name, figure in figures.items():
        figure.write_html(folder / f"{name}.html", include_plotlyjs="directory")  # works offline
        written.append(str(folder / f"{name}.html"))
        if png_ok:
            try:
                figure.write_image(folder / f"{name}.png", width=900, height=560, scale=1.5)
                written.append(str(folder / f"{name}.png"))
            except Exception as error:  # kaleido or a browser missing: HTML is enough
                png_ok = False
                logging.getLogger(__name__).warning("PNG export skipped (%s); HTML written", error)
    return written


def _cmd_simulate(args) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from fairal.datasets import load, load_csv
    from fairal.plots import simulation_figures
    from fairal.simulate import default_budgets, simulate, summarise

    if args.csv:
        if not (args.label and args.sensitive):
            raise ValueError("--csv needs --label and --sensitive (the label and sensitive column names)")
        dataset = load_csv(args.csv, label=args.label, sensitive=args.sensitive, positive=args.positive)
    else:
        dataset = load(args.dataset, **({"sensitive": args.sensitive} if args.sensitive else {}))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = list(range(args.seeds))
    budgets = default_budgets(args.budget, args.step)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    representation, strategy_params = args.representation, {}
    if args.policy or any(m.startswith("panda") for m in methods):
        from fairal.strategies.panda import DEFAULT_POLICY
        from fairal.panda.train import load_trained_policy

        policy_path = args.policy or str(DEFAULT_POLICY)
        strategy_params["panda"] = {"policy_path": policy_path}
        if args.representation == "pretrained":  # every method sees the features PANDA was trained on
            representation = load_trained_policy(policy_path).representation
    with tqdm(total=len(methods) * len(seeds), desc="simulate", unit="run") as bar:
        def progress(message):
            bar.set_postfix_str(message)
            bar.update()

        frame = simulate(dataset, methods, seeds=seeds, budgets=budgets, split_seed=args.split_seed,
                         n_initial=args.n_initial, representation=representation, learner=args.learner,
                         query_batch=args.query_batch, strategy_params=strategy_params,
                         trainer_params={"fairlearn": {"difference_bound": args.rho}}, progress=progress)
    frame.insert(0, "dataset", dataset.name)
    frame.to_csv(out / "simulation.csv", index=False)
    summary = summarise(frame)
    (out / "summary.md").write_text(
        f"# Simulation: {dataset.name}, sensitive = {dataset.sensitive}, {len(seeds)} seeds, "
        f"final budget {budgets[-1]}\n\nCommand: `python -m fairal {' '.join(sys.argv[1:])}`\n\n"
        + summary.to_markdown(index=False, floatfmt=".4f") + "\n")
    written = _write_figures(simulation_figures(frame, threshold=args.rho), out / "figures")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {out / 'simulation.csv'}, {out / 'summary.md'} and {len(written)} figure files in {out / 'figures'}")
    return 0


def _cmd_plot_simulation(args) -> int:
    from pathlib import Path

    from fairal.plots import simulation_figures

    folder = Path(args.folder)
    table = folder / "simulation.csv"
    if not table.exists():
        raise ValueError(f"no simulation.csv in {folder}")
    frame = pd.read_csv(table)
    written = _write_figures(simulation_figures(frame, threshold=args.rho), folder / "figures")
    print(f"wrote {len(written)} figure files in {folder / 'figures'}")
    return 0


def _cmd_train_policy(args) -> int:
    from dataclasses import fields, replace
    from pathlib import Path

    from tqdm import tqdm

    from fairal.datasets import load, panda_split
    from fairal.panda.train import MetaConfig, meta_train, save_trained_policy
    from fairal.representation import pretrain_representation

    dataset = load(args.dataset, **({"sensitive": args.sensitive} if args.sensitive else {}))
    config = MetaConfig()
    overrides = {f.name: getattr(args, f.name) for f in fields(MetaConfig)
                 if getattr(args, f.name, None) is not None}
    config = replace(config, **overrides)
    split = panda_split(len(dataset), seed=args.split_seed)
    D0 = split.meta_train
    print(f"pretraining the representation on the meta-train half ({len(D0):,} rows)…", flush=True)
    representation = pretrain_representation(dataset.X[D0], dataset.y[D0], random_state=args.split_seed)
    features = representation.transform(dataset.X[D0])
    with tqdm(total=config.iterations, desc="meta-training", unit="it") as bar:
        def progress(iteration, row):
            bar.update()
            shown = {"loss": row["val_loss"], "disp": row["val_soft_disparity"], "τ": row["temperature"]}
            if "eval_f1" in row:
                shown.update({"F1": row["eval_f1"], "DP": row["eval_disparity"]})
            bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})

        result = meta_train(features, dataset.y[D0], dataset.group_codes[D0], len(dataset.group_names),
                            config=config, progress=progress)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_trained_policy(out, result, representation, config=config, group_names=dataset.group_names,
                        dataset=dataset.name, sensitive=dataset.sensitive, split_seed=args.split_seed)
    result.history.to_csv(out.with_suffix(".history.csv"), index=False)
    print(f"meta-training took {result.seconds:.0f} s; kept iteration {result.best['iteration']}:")
    print(json.dumps(result.best, indent=2))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {out.with_suffix('.history.csv')}")
    return 0


DEFAULT_DB = ".fairal/fairal.db"  # the app's default (app/state.py); FAIRAL_DB overrides both


def _default_db() -> str:
    import os

    return os.environ.get("FAIRAL_DB", DEFAULT_DB)


def _cmd_worker(args) -> int:
    import signal

    from fairal.worker import Worker

    worker = Worker(args.db, debounce=args.debounce, max_wait=args.max_wait, poll=args.poll)
    if args.once:
        from fairal.store import Store

        with Store(args.db) as store:
            recorded = worker.run_once(store)
        print(f"trained {len(recorded)} model version(s)")
        return 0
    def interrupt(*_):  # stop now, even mid-fit: a version is stored in one transaction after its fit
        worker.stop()
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupt)
    logging.getLogger("fairal").setLevel(logging.INFO)
    try:
        worker.run()
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_users_add(args) -> int:
    import getpass
    import os

    from fairal import auth
    from fairal.store import Store

    password = os.environ.get("FAIRAL_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
    with Store(args.db) as store:
        admins = [a for a in store.annotators() if a["role"] == "admin" and a["has_password"]]
        # The command line has the database file, so it acts as the first admin.
        by = auth.User(admins[0]["id"], admins[0]["name"], "admin") if admins else None
        account = auth.create_account(store, args.name, password, role=args.role, by=by)
        for project in args.project or []:
            row = store.project_by_name(project)
            if row is None:
                raise ValueError(f"no project named {project!r}")
            store.add_member(int(row["id"]), account.id)
    print(f"created {account.role} {account.name!r}")
    return 0


def _cmd_users_list(args) -> int:
    from fairal.store import Store

    with Store(args.db) as store:
        for a in store.annotators():
            projects = ", ".join(p["name"] for p in store.member_projects(a["id"]))
            print(f"{a['name']}\t{a['role']}\t{'password' if a['has_password'] else 'no password'}\t{projects}")
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

    from fairal.simulate import METHODS

    sim = commands.add_parser("simulate", help="oracle-label active learning runs: methods × seeds × budgets",
                              description="Runs each method (a query strategy + its trainer) with oracle labels "
                                          "in PANDA's setting and writes simulation.csv, summary.md and figures.")
    sim.add_argument("--dataset", default="adult", help="built-in data set (default adult)")
    sim.add_argument("--csv", help="a CSV file instead of a built-in data set")
    sim.add_argument("--label", help="label column of --csv")
    sim.add_argument("--positive", help="positive label value of --csv (optional)")
    sim.add_argument("--sensitive", help="sensitive attribute (built-in) or column (--csv)")
    sim.add_argument("--methods", default="random,entropy,fairlearn",
                     help=f"comma-separated, from: {', '.join(METHODS)}")
    sim.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    sim.add_argument("--budget", type=int, default=400, help="final budget B")
    sim.add_argument("--step", type=int, default=25, help="evaluate every STEP labels")
    sim.add_argument("--query-batch", type=int, default=10, help="adaptive strategies re-query every N labels")
    sim.add_argument("--n-initial", type=int, default=50, help="labeled seed examples drawn from the meta-train half")
    sim.add_argument("--representation", default="pretrained", choices=["pretrained", "raw"],
                     help="pretrained: an MLP trained on the meta-train half (the PANDA policy's own, "
                          "when a panda method runs); raw: the encoded features")
    sim.add_argument("--learner", default="erm", help="trainer of the non-fairlearn methods: erm (converged "
                                                      "logistic regression) or head (PANDA's few-step head)")
    sim.add_argument("--policy", help="PANDA policy file (default: the shipped Adult policy)")
    sim.add_argument("--rho", type=float, default=0.04, help="demographic-parity bound for fairlearn (and the plots)")
    sim.add_argument("--split-seed", type=int, default=0)
    sim.add_argument("--out", default="simulation", help="output folder")
    sim.set_defaults(func=_cmd_simulate)

    replot = commands.add_parser("plot-simulation", help="redraw the figures of a simulate output folder")
    replot.add_argument("folder", help="a folder written by `simulate` (holds simulation.csv)")
    replot.add_argument("--rho", type=float, default=0.04, help="constraint line")
    replot.set_defaults(func=_cmd_plot_simulation)

    from dataclasses import fields

    from fairal.panda.train import MetaConfig

    policy = commands.add_parser("train-policy", help="meta-train a PANDA selection policy on a data set",
                                 description="Meta-trains PANDA's policy on the meta-train half of PANDA's "
                                             "split and writes a policy file (loaded with weights_only=True).")
    policy.add_argument("--dataset", default="adult")
    policy.add_argument("--sensitive", default=None)
    policy.add_argument("--split-seed", type=int, default=0)
    policy.add_argument("--out", default="data/policies/panda-adult-sex.pt", help="policy file to write")
    for field in fields(MetaConfig):
        policy.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, type=type(field.default),
                            default=None, help=f"default {field.default}")
    policy.set_defaults(func=_cmd_train_policy)

    worker = commands.add_parser("worker", help="retrain projects in the background when labels change")
    worker.add_argument("--db", default=_default_db(), help=f"the store (default $FAIRAL_DB or {DEFAULT_DB})")
    worker.add_argument("--debounce", type=float, default=1.0, help="seconds of quiet before retraining")
    worker.add_argument("--max-wait", type=float, default=10.0, help="retrain at least this often while busy")
    worker.add_argument("--poll", type=float, default=0.5, help="seconds between looks at the store")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.set_defaults(func=_cmd_worker)

    users = commands.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="create an account (password from $FAIRAL_PASSWORD or a prompt)")
    add.add_argument("name")
    add.add_argument("--role", default="annotator", choices=["admin", "annotator"])
    add.add_argument("--project", action="append", help="assign to this project (repeatable)")
    add.add_argument("--db", default=_default_db())
    add.set_defaults(func=_cmd_users_add)
    listing = users.add_parser("list", help="accounts, roles and projects")
    listing.add_argument("--db", default=_default_db())
    listing.set_defaults(func=_cmd_users_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError, PermissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
