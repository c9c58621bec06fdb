"""``python -m fairal …``: the command line. It calls the same library functions as the app."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    import pandas as pd

# numpy, pandas, torch and scikit-learn are imported inside the commands: `--help` stays instant.

__all__ = ["main", "baseline"]


def _cmd_datasets_list(args) -> int:
    import pandas as pd

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
    import pandas as pd

    from fairal.datasets import load, panda_split
    from fairal.metrics import evaluate
    from fairal.trainers import ERMTrainer

    dataset = load(dataset_name, **({"sensitive": sensitive} if sensitive else {}))
    rows = []
    for seed in seeds:
        split = panda_split(len(dataset), seed=seed)
        start = time.perf_counter()
        fitted = ERMTrainer(cast(Literal["logistic", "mlp"], model), random_state=seed).fit(
            dataset.subset(split.meta_train))
        seconds = time.perf_counter() - start
        test = dataset.subset(split.test)
        scores = evaluate(test.y, fitted.predict(test.X), sensitive_features=test.group)
        rows.append({"seed": seed, "fit_seconds": seconds, **scores})
    return pd.DataFrame(rows)


def _cmd_baseline(args) -> int:
    import numpy as np
    import pandas as pd

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


def _dataset_of(args):
    """The data of ``simulate`` / ``train-policy``: ``--csv`` with its columns, or a built-in data set."""
    from fairal.datasets import load, load_csv

    if args.csv:
        if not (args.label and args.sensitive):
            raise ValueError("--csv needs --label and --sensitive (the label and sensitive column names)")
        return load_csv(args.csv, label=args.label, sensitive=args.sensitive, positive=args.positive,
                        id_column=args.id_column, max_bytes=args.max_csv_bytes, max_rows=args.max_csv_rows)
    return load(args.dataset, **({"sensitive": args.sensitive} if args.sensitive else {}))


def _cmd_simulate(args) -> int:
    from pathlib import Path

    from fairal.research.methods import METHODS

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:  # said before the heavy imports and the data load
        problem = f"unknown method {', '.join(unknown)}" if unknown else "no method given"
        raise ValueError(f"--methods: {problem}; choose from {', '.join(METHODS)}")

    from tqdm import tqdm

    from fairal.plots import simulation_figures
    from fairal.research.simulate import default_budgets, plan_runs, simulate, summarise

    learners = [name.strip() for name in args.learner.split(",") if name.strip()]
    if args.address and args.backend != "ray":
        raise ValueError("--address is for --backend ray")
    dataset = _dataset_of(args)
    seeds = list(range(args.seeds))
    budgets = default_budgets(args.budget, args.step)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = plan_runs(methods, learners, seeds)
    representation, strategy_params = args.representation, {}
    if args.policy or any(m.startswith("panda") for m in methods):
        from fairal.panda.strategy import DEFAULT_POLICY
        from fairal.panda.train import load_trained_policy

        policy_path = args.policy or str(DEFAULT_POLICY)
        strategy_params["panda"] = {"policy_path": policy_path}
        if args.representation == "pretrained":  # every method sees the features PANDA was trained on
            representation = load_trained_policy(policy_path).representation
    resumed = sum((out / "runs" / run.file_name).exists() for run in runs)
    with tqdm(total=len(runs), initial=resumed, desc=f"simulate ({args.backend})", unit="run") as bar:
        def progress(message):
            bar.set_postfix_str(message)
            bar.update()

        frame = simulate(dataset, methods, seeds=seeds, budgets=budgets, split_seed=args.split_seed,
                         n_initial=args.n_initial, representation=representation, learner=learners,
                         query_batch=args.query_batch, strategy_params=strategy_params,
                         trainer_params={"fairlearn": {"difference_bound": args.rho}}, progress=progress,
                         backend=args.backend, address=args.address, checkpoint=out / "runs")
    frame.insert(0, "dataset", dataset.name)
    frame.insert(1, "sensitive", dataset.sensitive)
    frame.to_csv(out / "simulation.csv", index=False)
    summary = summarise(frame)
    (out / "summary.md").write_text(
        f"# Simulation: {dataset.name}, sensitive = {dataset.sensitive}, {len(seeds)} seeds, "
        f"final budget {budgets[-1]}\n\nCommand: `python -m fairal {' '.join(sys.argv[1:])}`\n\n"
        + summary.to_markdown(index=False, floatfmt=".4f") + "\n")
    written = _write_figures(simulation_figures(frame, threshold=args.rho), out / "figures")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nwrote {out / 'simulation.csv'}, {out / 'summary.md'} and {len(written)} figure files "
          f"in {out / 'figures'}")
    return 0


def _cmd_plot_simulation(args) -> int:
    import re
    from pathlib import Path

    import pandas as pd

    from fairal.plots import simulation_figures

    folder = Path(args.folder)
    table = folder / "simulation.csv"
    if not table.exists():
        raise ValueError(f"no simulation.csv in {folder}")
    frame = pd.read_csv(table)
    summary = folder / "summary.md"
    if "sensitive" not in frame.columns and summary.exists():  # written before the CSV had the column
        found = re.search(r"sensitive = ([^,\n]+)", summary.read_text())
        if found:
            frame.insert(1, "sensitive", found.group(1))
    written = _write_figures(simulation_figures(frame, threshold=args.rho), folder / "figures")
    print(f"wrote {len(written)} figure files in {folder / 'figures'}")
    return 0


def _cmd_train_policy(args) -> int:
    from dataclasses import fields, replace
    from pathlib import Path

    from tqdm import tqdm

    from fairal.datasets import panda_split
    from fairal.panda.strategy import SHIPPED_POLICIES
    from fairal.panda.train import MetaConfig, fit_task_sizes, train_policy

    dataset = _dataset_of(args)
    overrides = {f.name: getattr(args, f.name) for f in fields(MetaConfig)
                 if getattr(args, f.name, None) is not None}
    config = replace(MetaConfig(), **overrides)
    if not {"budget", "pool_size", "validation_size", "n_initial"} & set(overrides):
        n_meta_train = len(panda_split(len(dataset), seed=args.split_seed).meta_train)
        fitted = fit_task_sizes(config, n_meta_train)
        if fitted != config:
            print(f"{dataset.name}'s meta-train half has {n_meta_train:,} rows: tasks of budget {fitted.budget}, "
                  f"pool {fitted.pool_size}, validation {fitted.validation_size}")
            config = fitted
    out = Path(args.out or SHIPPED_POLICIES / f"panda-{dataset.name}-{dataset.sensitive}.pt")
    with tqdm(total=config.iterations, desc="meta-training", unit="it") as bar:
        def progress(iteration, row):
            bar.update()
            shown = {"loss": row["val_loss"], "disp": row["val_soft_disparity"], "τ": row["temperature"]}
            if "eval_f1" in row:
                shown.update({"F1": row["eval_f1"], "DP": row["eval_disparity"]})
            bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})

        result = train_policy(dataset, config, out, split_seed=args.split_seed, progress=progress,
                              stage=lambda message: bar.write(message + "…"))
    print(f"meta-training took {result.seconds:.1f} s; kept iteration {result.best['iteration']}:")
    print(json.dumps(result.best, indent=2))
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {out.with_suffix('.history.csv')}")
    if out.resolve().parent == SHIPPED_POLICIES.resolve():
        print("the app offers PANDA with this policy for projects on this data")
    return 0


def _cmd_tune_policy(args) -> int:
    from pathlib import Path

    from fairal.panda import tuning

    _check_tune_backend(args)  # said before the data load and the pretraining
    import optuna

    dataset = _dataset_of(args)
    fixed, pinned = _tune_fixed_config(args, dataset)
    study_path = Path(args.study or Path("tune-policy") / f"{dataset.name}-{dataset.sensitive}" / "study.db")
    folder = study_path.parent
    name = args.study_name or f"panda-{dataset.name}-{dataset.sensitive}"
    out = Path(args.out or folder / "best-policy.pt")
    optuna.logging.set_verbosity(optuna.logging.INFO if args.verbose else optuna.logging.WARNING)
    study = tuning.open_study(study_path, name, identity=tuning.identity(dataset, fixed, args.split_seed, pinned),
                              pruner=_tune_pruner(args, fixed))
    done = tuning.trials_done(study)
    stopped = False
    if done >= args.trials:
        print(f"study {name!r} in {study_path} already has {done} trials (--trials {args.trials}); summarising")
    else:
        if done:
            print(f"resuming study {name!r} in {study_path}: {done} trials done, {args.trials - done} to run")
        print(f"searching {', '.join(tuning.searched(fixed, pinned)) or 'nothing'} "
              f"({args.backend}); fixed: iterations {fixed.iterations}, ρ {fixed.rho}, learner {fixed.inner_learner}, "
              f"tasks of budget {fixed.budget}, pool {fixed.pool_size}, validation {fixed.validation_size}")
        stopped = _run_tune_trials(args, study, done, dataset, fixed, pinned, study_path, name)
    _report_tuning(study, fixed, folder, out)
    if stopped:
        print(f"stopped; rerun the same command to resume the study in {study_path}", file=sys.stderr)
        return 130
    return 0


def _check_tune_backend(args) -> None:
    """Ray installed for ``--backend ray``; ``--address`` only with it."""
    from fairal.panda import tuning

    if args.backend == "ray":
        try:
            import ray.tune  # noqa: F401
        except ImportError:
            raise ValueError(tuning.RAY_MISSING) from None
    elif args.address:
        raise ValueError("--address is for --backend ray")


def _tune_fixed_config(args, dataset):
    """The MetaConfig the search starts from (flags given, task sizes fitted to the data unless given),
    and the searched fields the flags pin."""
    from dataclasses import fields, replace

    from fairal.datasets import panda_split
    from fairal.panda import tuning
    from fairal.panda.config import MetaConfig
    from fairal.panda.train import fit_task_sizes

    overrides = {f.name: getattr(args, f.name) for f in fields(MetaConfig)
                 if getattr(args, f.name, None) is not None}
    fixed = replace(MetaConfig(), **overrides)
    if not {"budget", "pool_size", "validation_size", "n_initial"} & set(overrides):
        fixed = fit_task_sizes(fixed, len(panda_split(len(dataset), seed=args.split_seed).meta_train))
    pinned = set(overrides) & set(tuning.SEARCHED)
    tuning.check_space(fixed, pinned)
    return fixed, pinned


def _tune_pruner(args, fixed):
    """Optuna's pruner: the median pruner, or none with ``--no-prune``; None for Ray (ASHA prunes there)."""
    import optuna

    if args.backend != "optuna":
        return None
    if not args.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=args.prune_startup_trials,
                                       n_warmup_steps=args.prune_warmup_evals * fixed.eval_every)


def _run_tune_trials(args, study, done: int, dataset, fixed, pinned: set[str], study_path, name: str) -> bool:
    """Runs the missing trials under a progress bar; True when Ctrl-C stopped them."""
    import optuna
    from tqdm import tqdm

    from fairal.panda import tuning
    from fairal.panda.train import prepare_meta_training

    folder = study_path.parent
    with tqdm(total=args.trials, initial=done, desc="trials", unit="trial") as bar:
        postfix: dict[str, str] = {}

        def on_trial(_trial) -> None:
            complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if complete:
                postfix["best"] = f"{max(t.value for t in complete if t.value is not None):.4f}"
                postfix["feasible"] = str(sum(1 for t in complete if t.user_attrs.get("feasible")))
            postfix.pop("trial", None)
            bar.set_postfix(postfix, refresh=False)
            bar.update()

        def on_iteration(number: int, iteration: int) -> None:
            postfix["trial"] = f"{number} it {iteration}/{fixed.iterations}"
            bar.set_postfix(postfix)

        common = dict(pinned=pinned, trials=args.trials, seed=args.sampler_seed, split_seed=args.split_seed,
                      policies=folder / "policies", on_trial=on_trial)
        try:
            data = prepare_meta_training(dataset, fixed, split_seed=args.split_seed,
                                         stage=lambda message: bar.write(message + "…"))
            if args.backend == "ray":
                tuning.run_ray(study_path, name, data, dataset, fixed, address=args.address, prune=args.prune,
                               prune_warmup_evals=args.prune_warmup_evals, **common)
            else:
                tuning.run_optuna(study, data, dataset, fixed, on_iteration=on_iteration, **common)
        except KeyboardInterrupt:
            return True
    return False


def _report_tuning(study, fixed, folder, out) -> None:
    """Writes summary.md, the figures and the best policy, and prints the best trials."""
    from fairal.panda import tuning

    frame = tuning.summary_frame(study)
    best = tuning.export_best(study, out)
    summary = tuning.summary_markdown(study, frame, command=f"python -m fairal {' '.join(sys.argv[1:])}",
                                      best_path=best)
    (folder / "summary.md").write_text(summary)
    written = _write_figures(tuning.study_figures(study, frame, rho=fixed.rho), folder / "figures")
    if not frame.empty:
        shown = frame.drop(columns=[c for c in ("error", "seconds") if c in frame]).head(10)
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if "error" in frame:  # the first few reasons; summary.md has all
            for trial, error in frame.loc[frame["error"].notna(), ["trial", "error"]].head(3).itertuples(index=False):
                print(f"trial {trial} failed: {error}")
    print(f"\nwrote {folder / 'summary.md'} and {len(written)} figure files in {folder / 'figures'}")
    print(f"best policy: {best}" if best else "no trial completed: no policy to export")


def _add_data_flags(parser) -> None:
    """The data of ``simulate``, ``train-policy`` and ``tune-policy`` (read by :func:`_dataset_of`)."""
    parser.add_argument("--dataset", default="adult", help="built-in data set: see `datasets list`")
    parser.add_argument("--csv", help="a CSV file instead of a built-in data set")
    parser.add_argument("--label", help="label column of --csv")
    parser.add_argument("--positive", help="positive label value of --csv (optional)")
    parser.add_argument("--sensitive", default=None, help="sensitive attribute (built-in) or column (--csv)")
    parser.add_argument("--id-column", default=None,
                        help="column of --csv with a unique whole-number id per row (a repeated id is refused); "
                             "default: the rows are numbered 0, 1, 2, … and every other column is a feature")
    parser.add_argument("--max-csv-bytes", type=int, default=None,
                        help="refuse a larger --csv file before reading it (default: $FAIRAL_MAX_CSV_BYTES, "
                             "else 104857600 = 100 MiB)")
    parser.add_argument("--max-csv-rows", type=int, default=None,
                        help="refuse a --csv file with more data rows (default: $FAIRAL_MAX_CSV_ROWS, else 500000)")


def _add_meta_config_flags(parser) -> None:
    """One flag per MetaConfig field (``--inner-learner erm``; booleans as ``--bf16`` / ``--no-bf16``)."""
    import argparse
    from dataclasses import fields

    from fairal.panda.config import MetaConfig  # torch-free: keeps --help instant

    for field in fields(MetaConfig):
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(field.default, bool):
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"default {'on' if field.default else 'off'}")
        else:
            parser.add_argument(flag, dest=field.name, type=type(field.default), default=None,
                                help=f"default {field.default}")


DEFAULT_DB = ".fairal/fairal.db"  # the app's default (app/state.py); FAIRAL_DB overrides both


def _default_db() -> str:
    import os

    return os.environ.get("FAIRAL_DB", DEFAULT_DB)


def _cmd_worker(args) -> int:
    import signal

    from fairal.retrainer import Retrainer

    worker = Retrainer(args.db, debounce=args.debounce, max_wait=args.max_wait, poll=args.poll)
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
    for handler in logging.getLogger().handlers:  # a long-running log: every line says when
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    try:
        worker.run()
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_init(args) -> int:
    from pathlib import Path

    from fairal import auth
    from fairal.store import Store

    path = Path(args.db)
    existed = path.exists()
    with Store(path) as store:  # creates the file (and its folder) and brings the schema up to date
        if auth.has_admin(store):
            print(f"{path} is ready and has an admin; nothing else to do")
            return 0
        code = auth.issue_setup_code(store)
    print(f"{'opened' if existed else 'created'} the fairal database {path}; it has no admin yet.")
    print("Open the app (streamlit run app/streamlit_app.py) and create the first admin with this one-time")
    print(f"fairal setup code: {code}")
    print(f"(valid {auth.SETUP_CODE_HOURS} h; or: FAIRAL_PASSWORD=... python -m fairal users add NAME --role admin)")
    return 0


def _cli_admin():
    """Who the command line acts as: it has the database file, so it acts as an admin."""
    from fairal import auth

    return auth.User(0, "command line", "admin")


def _password(name: str) -> str:
    import getpass
    import os

    return os.environ.get("FAIRAL_PASSWORD") or getpass.getpass(f"password for {name}: ")


def _account_id(store, name: str) -> int:
    row = store.annotator_by_name(name)
    if row is None:
        raise ValueError(f"no account named {name!r}")
    return int(row["id"])


def _cmd_users_add(args) -> int:
    from fairal import auth
    from fairal.store import Store

    with Store(args.db) as store:
        projects = []
        for project in args.project or []:  # every project is checked before anything is written
            row = store.project_by_name(project)
            if row is None:
                raise ValueError(f"no project named {project!r}")
            projects.append(int(row["id"]))
        password = _password(args.name)
        with store.transaction():  # the account and its assignments, or nothing (a rerun then works)
            account = auth.create_account(store, args.name, password, role=args.role, by=_cli_admin())
            for project_id in projects:
                auth.assign(store, project_id, account.id, by=_cli_admin())
    print(f"created {account.role} {account.name!r}")
    return 0


def _cmd_users_reset_password(args) -> int:
    from fairal import auth
    from fairal.store import Store

    with Store(args.db, create=False) as store:  # a mistyped --db is an error, not a new file
        account_id = _account_id(store, args.name)
        auth.set_password(store, account_id, _password(args.name), by=_cli_admin())  # ends its sign-ins
    print(f"changed the password of {args.name!r}; its browsers are signed out")
    return 0


def _cmd_users_role(args) -> int:
    from fairal import auth
    from fairal.store import Store

    with Store(args.db, create=False) as store:  # a mistyped --db is an error, not a new file
        auth.set_role(store, _account_id(store, args.name), args.role, by=_cli_admin())
    print(f"{args.name!r} is now {args.role}")
    return 0


def _cmd_users_remove(args) -> int:
    from fairal import auth
    from fairal.store import Store

    with Store(args.db, create=False) as store:  # a mistyped --db is an error, not a new file
        gone = auth.remove_account(store, _account_id(store, args.name), by=_cli_admin())
    print(f"removed {args.name!r}" if gone else
          f"removed {args.name!r}'s password, sign-ins and projects; the name stays as the author of its labels")
    return 0


def _cmd_users_list(args) -> int:
    from fairal.store import Store
    from fairal.text import escape

    with Store(args.db, create=False) as store:  # a mistyped --db is an error, not a new file
        for a in store.annotators():
            projects = ", ".join(escape(p["name"]) for p in store.member_projects(a["id"]))
            # escaped: a name stored before names were checked must not reach the terminal as BEL or ESC
            print(f"{escape(a['name'])}\t{a['role']}\t{'password' if a['has_password'] else 'no password'}\t{projects}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: …)" to an option's help, unless it has no default to show (None, a flag)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Shows defaults; sub-commands' parsers are made with this class too (argparse's parser_class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, like the commands' own errors (argparse adds the usage)
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _positive(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number ≥ 1, got {text!r}")
    return value


def _add_db(parser) -> None:
    parser.add_argument("--db", default=_default_db(), help="the store ($FAIRAL_DB sets the default)")


def _add_datasets_command(commands) -> None:
    """The ``datasets`` command and its ``list`` and ``describe`` actions."""
    datasets = commands.add_parser("datasets", help="list and describe the built-in data sets",
                                   description="Without an action: the same as `datasets list`.")
    datasets.set_defaults(func=_cmd_datasets_list)
    datasets_commands = datasets.add_subparsers(dest="datasets_command", metavar="ACTION")
    datasets_commands.add_parser("list", help="the built-in data sets").set_defaults(func=_cmd_datasets_list)
    describe = datasets_commands.add_parser("describe", help="rows, features and base rates by group")
    describe.add_argument("name", help="adult, compas, german, synthetic or digits")
    describe.add_argument("--sensitive", help="sensitive attribute (e.g. sex, race; the data set's default if omitted)")
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    describe.set_defaults(func=_cmd_datasets_describe)


def _add_baseline_command(commands) -> None:
    """The ``baseline`` command."""
    base = commands.add_parser("baseline", help="ERM on PANDA's split: accuracy, F1 and disparities on the test set")
    base.add_argument("--dataset", default="adult", help="built-in data set: see `datasets list`")
    base.add_argument("--sensitive", help="sensitive attribute (the data set's default if omitted)")
    base.add_argument("--model", default="logistic", choices=["logistic", "mlp"], help="the ERM model")
    base.add_argument("--seeds", type=_positive, default=5, help="number of split seeds (0..N-1)")
    base.add_argument("--output", help="write the per-seed table to this CSV file")
    base.set_defaults(func=_cmd_baseline)


def _add_simulate_command(commands) -> None:
    """The ``simulate`` command."""
    from fairal.research.methods import METHODS

    sim = commands.add_parser("simulate", help="oracle-label active learning runs: methods × seeds × budgets",
                              description="Runs each method (a query strategy + its trainer) with oracle labels "
                                          "in PANDA's setting and writes simulation.csv, summary.md and figures.")
    _add_data_flags(sim)
    sim.add_argument("--methods", default="random,entropy,fairlearn",
                     help=f"comma-separated, from: {', '.join(METHODS)}")
    sim.add_argument("--seeds", type=_positive, default=5, help="number of seeds (0..N-1)")
    sim.add_argument("--budget", type=_positive, default=400, help="final budget B")
    sim.add_argument("--step", type=_positive, default=25, help="evaluate every STEP labels")
    sim.add_argument("--query-batch", type=_positive, default=10, help="adaptive strategies re-query every N labels")
    sim.add_argument("--n-initial", type=int, default=50, help="labeled seed examples drawn from the meta-train half")
    sim.add_argument("--representation", default="pretrained", choices=["pretrained", "raw"],
                     help="pretrained: an MLP trained on the meta-train half (the PANDA policy's own, "
                          "when a panda method runs); raw: the encoded features")
    sim.add_argument("--learner", default="erm",
                     help="trainer of the methods without one of their own: erm (converged logistic regression), "
                          "head (PANDA's few-step head), pool_parity (demographic parity held on the pool), "
                          "or fairlearn, forml, frtrain, irw, irwo, cvar "
                          "(FR-Train and FORML validate on the seed examples); comma-separated: one run each")
    sim.add_argument("--backend", default="serial", choices=["serial", "ray"],
                     help="serial: runs one after another here; ray: each (method, trainer, seed) run is a Ray "
                          "task (pip install -r requirements-ray.txt), with the same numbers")
    sim.add_argument("--address", help="Ray cluster address (--backend ray; a local Ray when omitted)")
    sim.add_argument("--policy", help="PANDA policy file (the shipped Adult policy if omitted)")
    sim.add_argument("--rho", type=float, default=0.04, help="demographic-parity bound for fairlearn (and the plots)")
    sim.add_argument("--split-seed", type=int, default=0, help="seed of PANDA's split (meta-train half, pool, test)")
    sim.add_argument("--out", default="simulation",
                     help="output folder; each finished run is kept in OUT/runs, so the same command started "
                          "again runs only what is missing")
    sim.set_defaults(func=_cmd_simulate)


def _add_plot_simulation_command(commands) -> None:
    """The ``plot-simulation`` command."""
    replot = commands.add_parser("plot-simulation", help="redraw the figures of a simulate output folder")
    replot.add_argument("folder", help="a folder written by `simulate` (holds simulation.csv)")
    replot.add_argument("--rho", type=float, default=0.04, help="constraint line")
    replot.set_defaults(func=_cmd_plot_simulation)


def _add_train_policy_command(commands) -> None:
    """The ``train-policy`` command."""
    policy = commands.add_parser("train-policy", help="meta-train a PANDA selection policy on a data set",
                                 description="Meta-trains PANDA's policy on the meta-train half of PANDA's "
                                             "split and writes a policy file (loaded with weights_only=True).")
    _add_data_flags(policy)
    policy.add_argument("--split-seed", type=int, default=0,
                        help="seed of PANDA's split: the policy is meta-trained on its meta-train half")
    policy.add_argument("--out", help="policy file to write (default data/policies/panda-DATA-SENSITIVE.pt, "
                                      "where the app finds it)")
    _add_meta_config_flags(policy)
    policy.set_defaults(func=_cmd_train_policy)


def _add_tune_policy_command(commands) -> None:
    """The ``tune-policy`` command."""
    tune = commands.add_parser(
        "tune-policy", help="search PANDA's meta-training hyperparameters (Optuna TPE; SQLite study, resumable)",
        description="Optuna's TPE sampler over PANDA's hyperparameters (learning rate, layers, width, "
                    "temperatures, inner and proximal steps, meta-batch); each trial meta-trains a policy. "
                    "Objective: the kept policy's held-out F1 when its disparity is ≤ ρ, else −(disparity − ρ). "
                    "The study lives in a SQLite file: rerunning the command resumes it up to --trials. "
                    "MetaConfig flags (as in train-policy) fix a setting; a searched one given is not searched.")
    _add_data_flags(tune)
    tune.add_argument("--split-seed", type=int, default=0, help="seed of PANDA's split (meta-train half)")
    tune.add_argument("--trials", type=_positive, default=50,
                      help="trials in the study when done (complete, pruned or failed; a resumed study runs the rest)")
    tune.add_argument("--backend", default="optuna", choices=["optuna", "ray"],
                      help="optuna: trials one after another here; ray: Ray Tune (pip install -r requirements-ray.txt)")
    tune.add_argument("--address", help="Ray cluster address (--backend ray; a local Ray when omitted)")
    tune.add_argument("--study", help="SQLite file of the study (default tune-policy/DATA-SENSITIVE/study.db); "
                                      "trial policies, summary.md and figures/ go beside it")
    tune.add_argument("--study-name", help="study name in the file (default panda-DATA-SENSITIVE)")
    tune.add_argument("--out", help="where the best trial's policy is copied (default best-policy.pt beside the "
                                    "study; data/policies/… makes the app offer it)")
    tune.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler")
    tune.add_argument("--no-prune", dest="prune", action="store_false", help="never stop a trial early")
    tune.add_argument("--prune-startup-trials", type=int, default=5,
                      help="complete trials before the median pruner stops any (optuna backend)")
    tune.add_argument("--prune-warmup-evals", type=int, default=2,
                      help="a trial can be pruned from its N-th evaluation on (every --eval-every iterations)")
    _add_meta_config_flags(tune)
    tune.set_defaults(func=_cmd_tune_policy)


def _add_worker_command(commands) -> None:
    """The ``worker`` command."""
    worker = commands.add_parser("worker", help="retrain projects in the background when labels change")
    _add_db(worker)
    worker.add_argument("--debounce", type=float, default=1.0, help="seconds of quiet before retraining")
    worker.add_argument("--max-wait", type=float, default=10.0, help="retrain at least this often while busy")
    worker.add_argument("--poll", type=float, default=0.5, help="seconds between looks at the store")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.set_defaults(func=_cmd_worker)


def _add_init_command(commands) -> None:
    """The ``init`` command."""
    init = commands.add_parser("init", help="create the database (if needed) and print a one-time setup code "
                                            "for the app's first-admin form")
    _add_db(init)
    init.set_defaults(func=_cmd_init)


def _column_mapping(pairs: list[str] | None) -> dict[str, str] | None:
    """``--column item=example_idx --column answer=ans`` as ``{"item": "example_idx", "answer": "ans"}``."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        role, sep, name = pair.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise ValueError(f"--column takes ROLE=NAME (roles: item, worker, answer), got {pair!r}")
        mapping[role.strip()] = name.strip()
    return mapping or None


def _cmd_crowd_import(args) -> int:
    from pathlib import Path

    from fairal import clean_set
    from fairal.store import Store

    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"answers file {path} not found")
    with Store(args.db, create=False) as store:  # a mistyped --db is an error, not a new file
        row = store.project_by_name(args.project)
        if row is None:
            raise ValueError(f"no project named {args.project!r}")
        n = clean_set.import_crowd_csv(store, int(row["id"]), path.read_bytes(), by=_cli_admin(), filename=path.name,
                                       format=args.format, columns=_column_mapping(args.column))
    print(f"imported {n:,} answers from {path.name} into {args.project!r}")
    return 0


def _add_crowd_command(commands) -> None:
    """The ``crowd`` command: ``crowd import`` reads a crowd CSV into a project."""
    crowd = commands.add_parser("crowd", help="crowd answers").add_subparsers(dest="crowd_command", required=True,
                                                                             metavar="ACTION")
    imp = crowd.add_parser("import", help="import a long or wide crowd CSV into a project (all rows or none)")
    imp.add_argument("file", help="the CSV file")
    imp.add_argument("--project", required=True, help="project name")
    imp.add_argument("--format", default="auto", choices=["auto", "long", "wide"], help="file layout")
    imp.add_argument("--column", action="append", metavar="ROLE=NAME",
                     help="column name for item, worker or answer (wide files: the stem, e.g. answer=ans for "
                          "ans_1, ans_2, ...); repeatable. FR-Train's files: --column item=example_idx")
    imp.set_defaults(func=_cmd_crowd_import)
    _add_db(imp)


def _add_users_command(commands) -> None:
    """The ``users`` command and its actions, each with ``--db``."""
    users = commands.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True,
                                                                         metavar="ACTION")
    add = users.add_parser("add", help="create an account (password from $FAIRAL_PASSWORD or a prompt)")
    add.add_argument("name", help="account name")
    add.add_argument("--role", default="annotator", choices=["admin", "annotator"], help="what the account may do")
    add.add_argument("--project", action="append", help="assign to this project (repeatable)")
    add.set_defaults(func=_cmd_users_add)
    listing = users.add_parser("list", help="accounts, roles and projects")
    listing.set_defaults(func=_cmd_users_list)
    reset = users.add_parser("reset-password", help="set a new password (from $FAIRAL_PASSWORD or a prompt) "
                                                    "and sign the account out everywhere")
    reset.add_argument("name", help="account name")
    reset.set_defaults(func=_cmd_users_reset_password)
    role = users.add_parser("role", help="make an account admin or annotator (not the last admin)")
    role.add_argument("name", help="account name")
    role.add_argument("role", choices=["admin", "annotator"], help="the new role")
    role.set_defaults(func=_cmd_users_role)
    remove = users.add_parser("remove", help="delete an account and end its sign-ins (not the last admin); "
                                             "its labels stay")
    remove.add_argument("name", help="account name")
    remove.set_defaults(func=_cmd_users_remove)
    for action in (add, listing, reset, role, remove):
        _add_db(action)


def build_parser() -> argparse.ArgumentParser:
    """The parser; it imports nothing heavy (numpy, pandas, torch, scikit-learn load in the commands)."""
    parser = _Parser(prog="python -m fairal", description="fairal: fair active labeling.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (_add_datasets_command, _add_baseline_command, _add_simulate_command,
                        _add_plot_simulation_command, _add_train_policy_command, _add_tune_policy_command,
                        _add_worker_command, _add_init_command, _add_users_command, _add_crowd_command):
        add_command(commands)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean bad input or a bad file: reported in one line, exit code 2."""
    store = sys.modules.get("fairal.store")  # its errors can only come once it is imported
    return (ValueError, KeyError, OSError, sqlite3.Error) + ((store.StoreError,) if store else ())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except Exception as error:
        if not isinstance(error, _user_errors()):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
