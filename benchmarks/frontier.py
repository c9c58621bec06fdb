"""The PANDA frontier (issue 9, item 4): every strategy × every trainer at one budget, through ``simulate``.

Adult (sensitive = sex), PANDA's split (``split_seed`` 0), B = 400 labels, ρ = 0.04 (DP to overall),
seeds 0..4. Every strategy sees the representation stored in the policy file (``--policy``, the
shipped ``data/policies/panda-adult-sex.pt`` by default), as ``python -m fairal simulate`` sets it up
when PANDA runs, so all strategies share PANDA's representation (as the paper does). Each unit
(strategy, trainer, seed) is one :func:`fairal.research.simulate.simulate` call with ``budgets=[B]``: a
non-adaptive strategy (random, group_random, panda) trains its trainer once; an adaptive one (margin,
entropy, FAL) retrains it every ``--query-batch`` labels, as simulate and the app do. fairlearn gets
``difference_bound = ρ``; FR-Train and FORML validate on the 50 seed examples (simulate's rule);
every other trainer parameter is the trainer's default.

The PANDA strategy with a trainer other than its own: ``simulate`` fixes the trainer of the ``panda``
(head) and ``panda_lr`` (erm) methods, and METHODS has no panda entry for the other trainers, so this
script registers a temporary method ``Method("panda", trainer)`` for the duration of each call
(``unittest.mock.patch.dict`` on METHODS) and reports it as strategy ``panda``.

Resumable: each finished unit is appended to ``--out``/frontier.csv at once, with the configuration
(data set, B, ρ, policy file hash, split seed, seed-set size, query batch); a rerun skips the units
already there for the same configuration, so a stopped run continues where it stopped. The loop runs
the cheap trainers first (erm, head, fairlearn, pool_parity for every strategy and seed), then irw, forml, frtrain.

Cost (measured 2026-11-26 on 2 shared cores, 1 torch thread, seed 0, one unit each): a non-adaptive unit
takes 0.1-2 s with erm, head, fairlearn, irw or forml and 17 s with frtrain (one FR-Train fit = 10,000
full-batch epochs, 9-10.5 s CPU whether it has 50 or 450 rows). Adaptive units retrain 40 times: margin
took 2 s (erm), 0.5 s (head), 21 s (fairlearn), 12 s (irw), 9 s (forml), ~400 s CPU (frtrain, estimated
from 40 fits); FAL adds ~8 s of its own selection (``fal`` ~10 s with erm). The whole default run is
~15 min of CPU for erm, head, fairlearn, irw and forml and ~1.8 h of CPU for frtrain (its 15 adaptive
units); wall time is that times the machine's load.

    PYTHONPATH=. python benchmarks/frontier.py                # full run: results/frontier.{csv,md,png,html}
    PYTHONPATH=. python benchmarks/frontier.py --quick        # smoke run: B = 40, 1 seed, 2 × 2 pairs
    PYTHONPATH=. python benchmarks/frontier.py --report-only  # rewrite the table and figure from the CSV
    PYTHONPATH=. python benchmarks/frontier.py --policy data/policies/NEW.pt --out benchmarks/results/frontier-new
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from fairal.research.methods import METHODS, Method

RESULTS = Path(__file__).parent / "results"
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "data" / "policies" / "panda-adult-sex.pt"

#: Strategies, cheapest first. ``fal_exact`` (2·|U| scikit-learn refits per query: ~190× slower than
#: ``fal`` at Adult's pool, see benchmarks/results/fal_speed.md) is left out unless named.
STRATEGIES = ("random", "group_random", "panda", "fal", "margin", "entropy")
#: Trainers in the order they run: the cheap ones first, FR-Train (10,000 full-batch epochs) last.
TRAINERS = ("erm", "head", "fairlearn", "pool_parity", "irw", "forml", "frtrain")
METRICS = ("f1", "demographic_parity_to_overall", "error_rate_balance", "accuracy",
           "demographic_parity_difference")
#: Columns that identify a configuration: cached units count only where all of them match.
CONFIG = ("dataset", "sensitive", "budget", "rho", "policy_sha", "split_seed", "n_initial", "query_batch",
          "representation")
KEY = ("strategy", "trainer", "seed")

_STRATEGY_METHOD = {"random": "random", "margin": "margin", "entropy": "entropy", "group_random": "group_random",
                    "fal": "fal", "fal_exact": "fal_exact"}


def policy_sha(path) -> str:
    """The first 12 hex digits of the policy file's SHA-256 (a new policy at the same path is a new config)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _method(strategy: str, trainer: str) -> tuple[str, dict]:
    """The METHODS name simulate runs for (strategy, trainer), and the temporary entries it needs."""
    if strategy == "panda":
        name = f"frontier_panda_{trainer}"  # not in simulate's fixed-trainer set: ``learner`` applies
        return name, {name: Method("panda", trainer, "PANDA's picks (frontier benchmark)")}
    if strategy not in _STRATEGY_METHOD:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {sorted([*_STRATEGY_METHOD, 'panda'])}")
    return _STRATEGY_METHOD[strategy], {}


def run_unit(dataset, strategy: str, trainer: str, seed: int, *, budget: int, rho: float, representation,
             policy_path=None, split_seed: int = 0, n_initial: int = 50, query_batch: int = 10) -> dict:
    """One (strategy, trainer, seed) run of ``simulate`` at the single budget ``budget``: its row."""
    from fairal.research.simulate import simulate

    name, extra = _method(strategy, trainer)
    strategy_params = {"panda": {"policy_path": str(policy_path)}} if policy_path is not None else {}
    wall, cpu = time.perf_counter(), time.process_time()
    with mock.patch.dict(METHODS, extra):
        frame = simulate(dataset, [name], seeds=[seed], budgets=[budget], split_seed=split_seed,
                         n_initial=n_initial, representation=representation, learner=trainer,
                         query_batch=query_batch, strategy_params=strategy_params,
                         trainer_params={"fairlearn": {"difference_bound": rho}})
    row = frame.iloc[-1].to_dict()
    row.update(strategy=strategy, trainer=trainer, wall_seconds=time.perf_counter() - wall,
               cpu_seconds=time.process_time() - cpu)
    row.pop("method", None)
    return row


def read_cache(path: Path, config: dict) -> pd.DataFrame:
    """The rows of ``path`` (if it exists) whose configuration is ``config``; the last row per unit."""
    if not path.exists():
        return pd.DataFrame(columns=[*CONFIG, *KEY])
    frame = pd.read_csv(path)
    keep = np.ones(len(frame), dtype=bool)
    for column, value in config.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        if isinstance(value, float):
            keep &= np.isclose(frame[column].astype(float), value)
        else:
            keep &= frame[column].astype(str) == str(value)
    return frame[keep].drop_duplicates(list(KEY), keep="last").reset_index(drop=True)


def _n_rows(path: Path) -> int:
    return len(pd.read_csv(path)) if path.exists() and path.stat().st_size else 0


def run(dataset, *, strategies: Sequence[str], trainers: Sequence[str], seeds: Sequence[int], budget: int,
        rho: float, representation, policy_path, cache: Path, split_seed: int = 0, n_initial: int = 50,
        query_batch: int = 10, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run every missing unit (trainer → seed → strategy order), appending each to ``cache``; all rows."""
    config = {"dataset": dataset.name, "sensitive": dataset.sensitive, "budget": int(budget), "rho": float(rho),
              "policy_sha": policy_sha(policy_path) if policy_path is not None else "none",
              "split_seed": int(split_seed), "n_initial": int(n_initial), "query_batch": int(query_batch),
              "representation": representation if isinstance(representation, str) else "policy"}
    done = read_cache(cache, config)
    finished = {(str(s), str(t), int(d)) for s, t, d in done[list(KEY)].itertuples(index=False)}
    todo = [(s, t, d) for t in trainers for d in seeds for s in strategies if (s, t, int(d)) not in finished]
    log(f"{len(finished)} units cached in {cache}, {len(todo)} to run")
    cache.parent.mkdir(parents=True, exist_ok=True)
    for i, (strategy, trainer, seed) in enumerate(todo, 1):
        try:
            row = run_unit(dataset, strategy, trainer, seed, budget=budget, rho=rho, representation=representation,
                           policy_path=policy_path, split_seed=split_seed, n_initial=n_initial,
                           query_batch=query_batch)
        except Exception as error:  # one failing trainer must not stop the others: said, not cached
            log(f"[{i}/{len(todo)}] {strategy} × {trainer} seed {seed}: FAILED {type(error).__name__}: {error}")
            continue
        row = {**config, **row, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        pd.DataFrame([row]).to_csv(cache, mode="a", header=not cache.exists() or cache.stat().st_size == 0,
                                   index=False)
        log(f"[{i}/{len(todo)}] {strategy} × {trainer} seed {seed}: F1 {row['f1']:.3f}, "
            f"DP {row['demographic_parity_to_overall']:.3f}, ERB {row['error_rate_balance']:.3f}; "
            f"{row['wall_seconds']:.1f} s wall, {row['cpu_seconds']:.1f} s CPU")
    return read_cache(cache, config)


def summarise(frame: pd.DataFrame, rho: float) -> pd.DataFrame:
    """Mean and std over seeds per (strategy, trainer), with feasibility (mean DP to overall ≤ ρ)."""
    grouped = frame.groupby(["strategy", "trainer"], sort=False)
    out = grouped[list(METRICS)].mean().add_suffix("_mean").join(
        grouped[list(METRICS)].std(ddof=1).add_suffix("_std"))
    out["seeds_within_rho"] = grouped["demographic_parity_to_overall"].apply(lambda v: int((v <= rho).sum()))
    out["f1_max"] = grouped["f1"].max()  # 0: every seed's model predicts no positives (a constant model)
    out["seeds"] = grouped.size()
    out["wall_seconds"] = grouped["wall_seconds"].mean()
    out["cpu_seconds"] = grouped["cpu_seconds"].mean()
    out = out.reset_index()
    out["feasible"] = out["demographic_parity_to_overall_mean"] <= rho
    order_s = {s: i for i, s in enumerate([*STRATEGIES, "fal_exact"])}
    order_t = {t: i for i, t in enumerate(TRAINERS)}
    return out.sort_values(["strategy", "trainer"], key=lambda c: c.map(order_s if c.name == "strategy" else order_t)
                           ).reset_index(drop=True)


def best_feasible(summary: pd.DataFrame) -> pd.Series | None:
    """The feasible pair with the highest mean F1 (a constant model, F1 = 0 on every seed, never counts)."""
    feasible = summary[summary["feasible"] & (summary["f1_max"] > 0)]
    return None if feasible.empty else feasible.loc[feasible["f1_mean"].idxmax()]


def figure(summary: pd.DataFrame, rho: float, title: str):
    """DP to overall (x) vs F1 (y): colour = strategy, marker = trainer, error bars = seed std, line at ρ."""
    import plotly.graph_objects as go

    from fairal.plots import _PALETTE, _SYMBOLS  # the app's palette and markers

    strategies = list(dict.fromkeys(summary["strategy"]))
    trainers = list(dict.fromkeys(summary["trainer"]))
    fig = go.Figure()
    for _, row in summary.iterrows():
        colour = _PALETTE[strategies.index(row["strategy"]) % len(_PALETTE)]
        symbol = _SYMBOLS[trainers.index(row["trainer"]) % len(_SYMBOLS)]
        dp_std = 0.0 if pd.isna(row["demographic_parity_to_overall_std"]) else row["demographic_parity_to_overall_std"]
        f1_std = 0.0 if pd.isna(row["f1_std"]) else row["f1_std"]
        fig.add_trace(go.Scatter(
            x=[row["demographic_parity_to_overall_mean"]], y=[row["f1_mean"]], mode="markers",
            name=f"{row['strategy']} · {row['trainer']}", showlegend=False,
            marker=dict(color=colour, symbol=symbol, size=11, opacity=0.85, line=dict(width=1, color="white")),
            error_x=dict(type="data", array=[dp_std], color=colour, thickness=1),
            error_y=dict(type="data", array=[f1_std], color=colour, thickness=1),
            hovertemplate=(f"<b>{row['strategy']} · {row['trainer']}</b> ({row['seeds']} seeds)<br>"
                           f"DP to overall %{{x:.3f}} ± {dp_std:.3f}<br>F1 %{{y:.3f}} ± {f1_std:.3f}<br>"
                           f"error-rate balance {row['error_rate_balance_mean']:.3f}<extra></extra>")))
    # The legend names colours (strategies) and markers (trainers) apart: 36 pairs would not fit.
    for i, strategy in enumerate(strategies):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=strategy, legendgroup="strategy",
                                 legendgrouptitle_text="strategy (colour)",
                                 marker=dict(color=_PALETTE[i % len(_PALETTE)], symbol="circle", size=11)))
    for i, trainer in enumerate(trainers):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=trainer, legendgroup="trainer",
                                 legendgrouptitle_text="trainer (marker)",
                                 marker=dict(color="#555555", symbol=_SYMBOLS[i % len(_SYMBOLS)], size=11)))
    fig.add_vline(x=rho, line_dash="dash", line_color="grey", annotation_text=f"ρ = {rho:g}",
                  annotation_position="top right")
    fig.update_layout(xaxis_title="demographic parity to overall (lower is fairer)", yaxis_title="F1 (test)",
                      title=title, template="plotly_white", legend=dict(groupclick="toggleitem"),
                      margin=dict(l=10, r=10, t=80, b=10))
    return fig


def _shown(path) -> str:
    """A path relative to the repository when it lies inside it."""
    path = Path(path).resolve()
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _fmt(mean, std) -> str:
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def report(frame: pd.DataFrame, *, rho: float, budget: int, out: Path, command: str, policy_path,
           session: dict | None = None, planned: int | None = None, png: bool = True) -> str:
    """Write ``out``/frontier.md, .png (when kaleido can) and .html; returns the markdown."""
    summary = summarise(frame, rho)
    table = pd.DataFrame({
        "strategy": summary["strategy"], "trainer": summary["trainer"], "seeds": summary["seeds"],
        "F1": [_fmt(m, s) for m, s in zip(summary["f1_mean"], summary["f1_std"], strict=True)],
        "DP to overall": [_fmt(m, s) for m, s in zip(summary["demographic_parity_to_overall_mean"],
                                                     summary["demographic_parity_to_overall_std"], strict=True)],
        "error-rate balance": [_fmt(m, s) for m, s in zip(summary["error_rate_balance_mean"],
                                                          summary["error_rate_balance_std"], strict=True)],
        f"DP ≤ {rho:g}": np.where(~summary["feasible"], "no",
                                  np.where(summary["f1_max"] == 0, "yes (constant: no positives)", "yes")),
        f"seeds with DP ≤ {rho:g}": [f"{int(k)}/{int(n)}" for k, n in zip(summary["seeds_within_rho"],
                                                                           summary["seeds"], strict=True)],
        "s / run (wall)": summary["wall_seconds"].round(1), "s / run (CPU)": summary["cpu_seconds"].round(1)})
    best = best_feasible(summary)
    if best is None:
        verdict = f"**No pair reaches ρ = {rho:g}** (mean DP to overall over seeds) at B = {budget}."
    else:
        verdict = (f"**Best feasible pair: {best['strategy']} × {best['trainer']}**, F1 "
                   f"{_fmt(best['f1_mean'], best['f1_std'])} at DP to overall "
                   f"{_fmt(best['demographic_parity_to_overall_mean'], best['demographic_parity_to_overall_std'])} "
                   f"(≤ ρ = {rho:g}), error-rate balance {best['error_rate_balance_mean']:.3f} "
                   f"({int(best['seeds'])} seed{'s' if best['seeds'] != 1 else ''}): the highest mean F1 among the "
                   "pairs whose mean DP is within ρ.")
    top = summary.sort_values("f1_mean", ascending=False).iloc[0]
    wall_total, cpu_total = frame["wall_seconds"].sum(), frame["cpu_seconds"].sum()
    title = (f"Adult (sex), PANDA split, B = {budget}: DP to overall vs F1, mean ± std over seeds"
             f"<br><sup>colour = strategy, marker = trainer; policy {Path(policy_path).name if policy_path else '—'}"
             "</sup>")
    constant = summary[summary["f1_max"] == 0]
    fig = figure(summary[summary["f1_max"] > 0], rho, title)  # a constant model at (0, 0) would squash the axes
    out.mkdir(parents=True, exist_ok=True)
    fig.write_html(out / "frontier.html", include_plotlyjs="cdn")
    written = "`frontier.html` only (PNG not asked for)"
    if png:
        try:
            fig.write_image(out / "frontier.png", width=1000, height=640, scale=1.5)
            written = "`frontier.png` (static) and `frontier.html` (interactive)"
        except Exception as error:  # kaleido or its browser missing: HTML only
            written = f"`frontier.html` only (PNG export failed: {type(error).__name__}: {str(error)[:120]})"
    n_units = len(frame)
    partial = "" if planned is None or n_units >= planned else (
        f"\n**Partial: {n_units} of {planned} planned units are in** (the run continues or can be resumed with "
        "the same command); the seeds column says how many seeds each cell has so far.\n")
    sess = "" if not session else (
        f" This session: {session['wall']:.0f} s wall, {session['cpu']:.0f} s CPU (process), "
        f"{session['children']:.0f} s CPU (children), {session['ran']} units run.")
    text = (
        f"# The frontier: every strategy × every trainer (Adult, sex, PANDA split, B = {budget}, ρ = {rho:g})\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs, `nice -n 10`), "
        f"Python {platform.python_version()}, no GPU. Policy: `{_shown(policy_path) if policy_path else '—'}` "
        f"(sha256 {frame['policy_sha'].iloc[0] if len(frame) else '—'}); its representation is every "
        "strategy's features. Each run = one `fairal.research.simulate.simulate` call with `budgets=[B]`, "
        "50 seed examples from the meta-train half, test set = PANDA's test quarter; adaptive strategies "
        f"(margin, entropy, fal) re-query every {int(frame['query_batch'].iloc[0]) if len(frame) else 10} labels "
        "with the trainer retrained on everything so far. fairlearn: `difference_bound = ρ`; FR-Train / "
        "FORML validate on the 50 seed examples; other trainer parameters are the defaults. Mean ± std over "
        "seeds (test set). DP = demographic parity to overall, max_a |E[h|a] − E[h]|. On a binary task margin "
        "and entropy order the pool alike (both by |p − ½|), so their rows agree except where tied "
        "probabilities break differently (fairlearn's mixture), and entropy's marker hides margin's.\n"
        f"{partial}\n"
        f"{verdict} Highest F1 overall: {top['strategy']} × {top['trainer']}, {top['f1_mean']:.3f} at DP "
        f"{top['demographic_parity_to_overall_mean']:.3f}.\n\n"
        + table.to_markdown(index=False) + "\n\n"
        f"Time: {n_units} runs, {wall_total:.0f} s wall and {cpu_total:.0f} s CPU summed over runs (per-run "
        f"`time.perf_counter` / `time.process_time`, across all sessions that filled the cache).{sess}\n\n"
        f"Figure: {written}."
        + ("" if constant.empty else " Not drawn (F1 = 0 on every seed: the model predicts no positives): "
           + ", ".join(f"{a} × {b}" for a, b in zip(constant["strategy"], constant["trainer"], strict=True)) + ".")
        + "\n")
    (out / "frontier.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default=str(DEFAULT_POLICY), help="PANDA policy file (its representation too)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--strategies", "--methods", dest="strategies", default=",".join(STRATEGIES),
                        help=f"comma-separated, from {', '.join([*STRATEGIES, 'fal_exact'])}")
    parser.add_argument("--trainers", default=",".join(TRAINERS), help="comma-separated, run in this order")
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--rho", type=float, default=0.04)
    parser.add_argument("--query-batch", type=int, default=10, help="adaptive strategies re-query every N labels")
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--sensitive", default="sex")
    parser.add_argument("--out", default=str(RESULTS), help="folder of frontier.csv / .md / .png / .html")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: B = 40, 1 seed, random + panda, erm + head, "
                        "into --out/frontier-quick")
    parser.add_argument("--report-only", action="store_true", help="write the table and figure from the CSV")
    args = parser.parse_args(argv)

    import torch

    from fairal.datasets import load
    from fairal.panda.train import load_trained_policy

    torch.set_num_threads(args.threads)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    trainers = [t.strip() for t in args.trainers.split(",") if t.strip()]
    out, budget, seeds = Path(args.out), args.budget, list(range(args.seeds))
    if args.quick:
        strategies, trainers, seeds, budget = ["random", "panda"], ["erm", "head"], [0], 40
        out = out / "frontier-quick"
    dataset = load(args.dataset, sensitive=args.sensitive)
    representation = load_trained_policy(args.policy).representation
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--report-only"]  # the run's command
    command = "python benchmarks/frontier.py" + "".join(f" {a}" for a in given)
    wall, cpu = time.perf_counter(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = _n_rows(out / "frontier.csv")
    kwargs = dict(strategies=strategies, trainers=trainers, seeds=seeds, budget=budget, rho=args.rho,
                  representation=representation, policy_path=args.policy, cache=out / "frontier.csv",
                  query_batch=args.query_batch, log=lambda m: print(m, flush=True))
    planned = len(strategies) * len(trainers) * len(seeds)
    text = "no finished runs yet"
    # One (trainer, seed) at a time, the report rewritten every few minutes and at the end: a stopped run
    # leaves a current partial table.
    chunks = [(None, None)] if args.report_only else [(t, d) for t in trainers for d in seeds]
    last_report = time.perf_counter()
    for k, (trainer, seed) in enumerate(chunks):
        frame = run(dataset, **{**kwargs, "trainers": [] if trainer is None else [trainer],
                                "seeds": [] if seed is None else [seed]})
        if k < len(chunks) - 1 and time.perf_counter() - last_report < 120:
            continue
        frame = frame[frame["strategy"].isin(strategies) & frame["trainer"].isin(trainers)
                      & frame["seed"].isin(seeds)]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        session = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                   "children": (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime),
                   "ran": _n_rows(out / "frontier.csv") - before}
        if not frame.empty:
            text = report(frame, rho=args.rho, budget=budget, out=out, command=command, policy_path=args.policy,
                          session=session, planned=planned)
            last_report = time.perf_counter()
    print(text)


if __name__ == "__main__":
    main()
