"""Hyperparameter search for PANDA's meta-training (``python -m fairal tune-policy``).

An Optuna study (TPE sampler, seeded) over the paper's ranges plus the learner's and the proximal
step's settings, stored in a SQLite file so that a stopped search resumes. The data are split and
the representation pretrained once per search (:func:`fairal.panda.train.prepare_meta_training`);
each trial meta-trains a policy with :func:`fairal.panda.train.meta_train`.

- **Objective** (maximised): the trial's kept policy (``result.best``: the best evaluation on the
  held-out tasks, hard top-B): its F1 when its disparity is ≤ ρ, else ``−(disparity − ρ)``, so
  every infeasible trial ranks below every feasible one, and among infeasible ones the smaller
  violation wins (:func:`objective_value`).
- **Pruning**: at each evaluation a trial reports the objective of the policy it would keep if it
  stopped there; Optuna's median pruner (or, with Ray, ASHA) stops trials that trail.
- **Space** (:func:`suggest`): lr log 1e-7…1e-2, layers {1, 3, 5}, width {16, 32, 64} (those
  divisible by ``heads``), meta-batch M {1, 2, 4, 8, 16}, prox_lr log 1e-3…0.5, prox_steps 1…10,
  and for the "head" learner inner_lr log 0.05…2 and inner_steps 10…100 (log). Temperatures:
  meta-training clamps the learned τ into [min_temperature, max_temperature], so the search
  draws that box and the initial τ inside it: max_temperature log 0.05…1, min_temperature log
  1e-3…max_temperature, the initial τ log min…max. To keep TPE's distributions fixed, the last
  two are drawn as positions u ∈ [0, 1] on the log scale (``min_temperature_position``,
  ``temperature_position``); the trial's ``config`` attribute holds the values used.
  A field given on the command line is pinned (not searched); giving any of the three
  temperatures pins all three.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairal.panda.config import MetaConfig

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = ["SEARCHED", "objective_value", "suggest", "trial_config", "searched", "check_space", "identity",
           "open_study", "trials_done", "run_optuna", "run_ray", "summary_frame", "summary_markdown",
           "study_figures", "export_best", "RAY_MISSING"]

logger = logging.getLogger(__name__)

#: MetaConfig fields the search sets (unless pinned on the command line).
SEARCHED = ("lr", "layers", "width", "temperature", "min_temperature", "max_temperature", "inner_lr",
            "inner_steps", "prox_lr", "prox_steps", "meta_batch")
_TEMPERATURES = {"temperature", "min_temperature", "max_temperature"}
LAYERS, WIDTHS, META_BATCHES = (1, 3, 5), (16, 32, 64), (1, 2, 4, 8, 16)
RAY_MISSING = "the Ray backend needs Ray Tune: pip install -r requirements-ray.txt"
#: Study attributes that must match when a study is resumed (a search compares like with like).
_IDENTITY = ("dataset", "sensitive", "split_seed", "fixed", "pinned")


def objective_value(f1: float, disparity: float, rho: float) -> float:
    """F1 when ``disparity ≤ rho`` (in [0, 1]); else ``−(disparity − rho)`` (< 0: below every feasible)."""
    if disparity <= rho:
        return float(f1)
    return -float(disparity - rho)


def _log_between(low: float, high: float, position: float) -> float:
    return float(math.exp(math.log(low) + position * (math.log(high) - math.log(low))))


def suggest(trial, fixed: MetaConfig, pinned: Iterable[str] = ()) -> dict[str, Any]:
    """Draw one configuration (the searched MetaConfig fields) with ``trial.suggest_*`` (define-by-run;
    also Ray's OptunaSearch). Pinned fields keep ``fixed``'s value and are not drawn."""
    pinned = set(pinned)
    if pinned & _TEMPERATURES:
        pinned |= _TEMPERATURES
    if fixed.inner_learner != "head":  # "erm" is solved to convergence: no steps, no step size
        pinned |= {"inner_lr", "inner_steps"}
    out: dict[str, Any] = {}

    def pick(name, draw):
        out[name] = getattr(fixed, name) if name in pinned else draw()

    widths = [w for w in WIDTHS if w % fixed.heads == 0]
    if "width" not in pinned and not widths:
        raise ValueError(f"--heads {fixed.heads} divides none of the widths {WIDTHS}; use heads 1, 2, 4, 8 or 16")
    pick("lr", lambda: trial.suggest_float("lr", 1e-7, 1e-2, log=True))
    pick("layers", lambda: trial.suggest_categorical("layers", LAYERS))
    pick("width", lambda: trial.suggest_categorical("width", widths))
    pick("meta_batch", lambda: trial.suggest_categorical("meta_batch", META_BATCHES))
    pick("inner_lr", lambda: trial.suggest_float("inner_lr", 0.05, 2.0, log=True))
    pick("inner_steps", lambda: trial.suggest_int("inner_steps", 10, 100, log=True))
    pick("prox_lr", lambda: trial.suggest_float("prox_lr", 1e-3, 0.5, log=True))
    pick("prox_steps", lambda: trial.suggest_int("prox_steps", 1, 10))
    if "temperature" in pinned:
        out.update({name: getattr(fixed, name) for name in sorted(_TEMPERATURES)})
    else:
        high = trial.suggest_float("max_temperature", 0.05, 1.0, log=True)
        low = _log_between(1e-3, high, trial.suggest_float("min_temperature_position", 0.0, 1.0))
        initial = _log_between(low, high, trial.suggest_float("temperature_position", 0.0, 1.0))
        out.update(max_temperature=high, min_temperature=low, temperature=initial)
    return out


def searched(fixed: MetaConfig, pinned: Iterable[str] = ()) -> list[str]:
    """The MetaConfig fields a search with these fixed settings and pins draws."""
    pinned = set(pinned)
    if pinned & _TEMPERATURES:
        pinned |= _TEMPERATURES
    if fixed.inner_learner != "head":
        pinned |= {"inner_lr", "inner_steps"}
    return [name for name in SEARCHED if name not in pinned]


def check_space(fixed: MetaConfig, pinned: Iterable[str] = ()) -> None:
    """Raise ValueError, before any pretraining, for settings under which every trial would fail."""
    import optuna

    suggest(optuna.trial.FixedTrial({"lr": 1e-3, "layers": 1, "width": 64, "meta_batch": 1, "inner_lr": 0.5,
                                     "inner_steps": 10, "prox_lr": 0.05, "prox_steps": 1, "max_temperature": 0.3,
                                     "min_temperature_position": 0.5, "temperature_position": 0.5}),
            fixed, pinned)
    if fixed.budget > fixed.pool_size:
        raise ValueError(f"budget ({fixed.budget}) is larger than the task pool ({fixed.pool_size})")
    if fixed.inner_learner not in ("head", "erm"):
        raise ValueError(f"--inner-learner: {fixed.inner_learner!r}; choose head or erm")
    if fixed.iterations < 1 or fixed.eval_every < 1 or fixed.eval_tasks < 1:
        raise ValueError("--iterations, --eval-every and --eval-tasks need to be ≥ 1")


class _Space:
    """:func:`suggest` as a picklable define-by-run function (Ray's OptunaSearch)."""

    def __init__(self, fixed: MetaConfig, pinned: Iterable[str]):
        self.fixed, self.pinned = fixed, sorted(pinned)

    def __call__(self, trial) -> dict[str, Any]:
        return suggest(trial, self.fixed, self.pinned)


def trial_config(fixed: MetaConfig, values: dict[str, Any]) -> MetaConfig:
    """``fixed`` with the MetaConfig fields among ``values`` (other keys, e.g. raw positions, ignored)."""
    names = {f.name for f in fields(MetaConfig)}
    return replace(fixed, **{k: v for k, v in values.items() if k in names})


def _storage_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def open_study(path, name: str, *, identity: dict[str, Any], pruner=None) -> optuna.Study:
    """Create the study in SQLite file ``path`` or load it (``load_if_exists``); refuse to resume a
    study made for other data or other fixed settings. The sampler is set by the backends."""
    import optuna

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=_storage_url(path), study_name=name, direction="maximize",
                                pruner=pruner, load_if_exists=True)
    stored = {k: study.user_attrs[k] for k in _IDENTITY if k in study.user_attrs}
    if not stored:
        for key in _IDENTITY:
            study.set_user_attr(key, identity[key])
    elif stored != {k: identity[k] for k in _IDENTITY}:
        differs = sorted(k for k in _IDENTITY if stored.get(k) != identity[k])
        if "fixed" in differs:
            old, new = stored.get("fixed") or {}, identity["fixed"]
            differs = [f"{k}: {old.get(k)!r} stored, {new.get(k)!r} now" for k in sorted(new) if old.get(k) != new[k]]
        else:
            differs = [f"{k}: {stored.get(k)!r} stored, {identity[k]!r} now" for k in differs]
        raise ValueError(f"study {name!r} in {path} was made with other settings ({'; '.join(differs)}); "
                         f"give the same flags to resume it, or another --study / --study-name")
    return study


def trials_done(study) -> int:
    """Trials that count towards ``--trials``: complete, pruned, failed (not ones stopped by Ctrl-C)."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")))


def _sampler(seed: int, offset: int):
    import optuna

    # A resumed search must not replay the first run's random start-up points: the seed moves on.
    return optuna.samplers.TPESampler(seed=seed + offset)


def _outcome(best: dict, rho: float) -> dict[str, Any]:
    f1, disparity = float(best["eval_f1"]), float(best["eval_disparity"])
    return {"f1": f1, "disparity": disparity, "feasible": bool(disparity <= rho),
            "iteration": int(best["iteration"]), "value": objective_value(f1, disparity, rho)}


def _train(data, dataset, config: MetaConfig, *, split_seed: int, policy_path: Path,
           report: Callable[[float, int, dict], None], tick: Callable[[int], None] | None = None):
    """Meta-train one configuration, calling ``report(objective so far, iteration, outcome so far)`` at each
    evaluation (it may raise to prune) and ``tick(iteration)`` after each iteration, and write the kept
    policy to ``policy_path``."""
    from fairal.panda.train import meta_train, write_policy

    best: dict[str, Any] = {}

    def progress(iteration: int, row: dict) -> None:
        if tick is not None:
            tick(iteration)
        if "eval_f1" not in row:
            return
        now = _outcome({"iteration": iteration, **row}, config.rho)
        if not best or now["value"] > best["value"]:  # the rule meta_train keeps its policy by
            best.clear()
            best.update(now)
        report(best["value"], iteration, dict(best))

    result = meta_train(data.features, data.y, data.group_codes, data.n_groups, config=config, progress=progress)
    write_policy(policy_path, result, data, dataset, config=config, split_seed=split_seed)
    return result, {**_outcome(result.best, config.rho), "seconds": float(result.seconds),
                    "policy": str(policy_path)}


def run_optuna(study, data, dataset, fixed: MetaConfig, *, pinned: Iterable[str], trials: int, seed: int,
               split_seed: int, policies, on_trial: Callable[[Any], None] | None = None,
               on_iteration: Callable[[int, int], None] | None = None) -> None:
    """Run trials until ``trials`` count (see :func:`trials_done`), in this process. ``on_trial(frozen trial)``
    follows each trial, ``on_iteration(trial number, iteration)`` each meta-training iteration."""
    import optuna

    policies = Path(policies)
    pinned = set(pinned)
    missing = trials - trials_done(study)
    if missing <= 0:
        return
    study.sampler = _sampler(seed, len(study.trials))

    def objective(trial: optuna.Trial) -> float:
        config = trial_config(fixed, suggest(trial, fixed, pinned))
        trial.set_user_attr("config", {k: getattr(config, k) for k in SEARCHED})

        def report(value: float, iteration: int, so_far: dict) -> None:
            for key in ("f1", "disparity", "feasible", "iteration"):
                trial.set_user_attr(key, so_far[key])
            trial.report(value, step=iteration)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at iteration {iteration}")

        try:
            _, attrs = _train(data, dataset, config, split_seed=split_seed,
                              policy_path=policies / f"trial-{trial.number:04d}.pt", report=report,
                              tick=(lambda i: on_iteration(trial.number, i)) if on_iteration else None)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)  # not counted: a resumed search runs it again
            raise
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        for key, value in attrs.items():
            if key != "value":
                trial.set_user_attr(key, value)
        return attrs["value"]

    callbacks = [lambda study, trial: on_trial(trial)] if on_trial else []
    study.optimize(objective, n_trials=missing, catch=(Exception,), callbacks=callbacks, gc_after_trial=True)


def _ray_trainable(params: dict, *, data, dataset, fixed: MetaConfig, split_seed: int, policies: str):
    """One Ray Tune trial: reports ``score`` (objective so far) at each evaluation and a final row."""
    from ray import tune

    config = trial_config(fixed, params)
    trial_id = tune.get_context().get_trial_id()
    used = json.dumps({k: getattr(config, k) for k in SEARCHED})  # a string: Ray flattens dicts in results

    def report(value: float, iteration: int, so_far: dict) -> None:
        tune.report({"score": value, "meta_iteration": iteration, **so_far, "finished": False, "config_json": used})

    _, attrs = _train(data, dataset, config, split_seed=split_seed, policy_path=Path(policies) / f"ray-{trial_id}.pt",
                      report=report)
    tune.report({**attrs, "score": attrs["value"], "meta_iteration": config.iterations, "finished": True,
                 "config_json": used})


def _rename_policy(path: Path, number: int) -> str:
    """``trial-NNNN.pt`` (and its history) for a Ray trial's policy; the path as it was when this process
    cannot see it (a cluster node's own disk)."""
    if not path.exists():
        return str(path)
    target = path.with_name(f"trial-{number:04d}.pt")
    path.replace(target)
    if path.with_suffix(".history.csv").exists():
        path.with_suffix(".history.csv").replace(target.with_suffix(".history.csv"))
    return str(target)


def run_ray(study_path, study_name: str, data, dataset, fixed: MetaConfig, *, pinned: Iterable[str], trials: int,
            seed: int, split_seed: int, policies, address: str | None = None, prune: bool = True,
            prune_warmup_evals: int = 2, on_trial: Callable[[Any], None] | None = None) -> None:
    """The same search on Ray Tune: OptunaSearch (TPE) over the same space and the same SQLite study
    (it runs in this, the driver, process), ASHA on the evaluations, one GPU per trial where the
    cluster has GPUs (else one CPU). ``address``: an existing cluster; by default a local Ray.
    With a cluster, the study's folder must be reachable by every node (the trials write policies there)."""
    try:  # every part of Ray the search uses, checked before anything starts (_ray_tuner uses them)
        import ray
        from ray import tune  # noqa: F401
        from ray.tune.schedulers import ASHAScheduler  # noqa: F401
        from ray.tune.search.optuna import OptunaSearch  # noqa: F401
    except ImportError as error:
        raise ValueError(RAY_MISSING) from error
    import optuna
    from optuna.trial import TrialState

    pinned = set(pinned)
    study_path = Path(study_path).resolve()
    policies = Path(policies).resolve()
    study = optuna.load_study(study_name=study_name, storage=_storage_url(study_path))
    missing = trials - trials_done(study)
    if missing <= 0:
        return
    offset = len(study.trials)

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    tuner = _ray_tuner(study_path, study_name, data, dataset, fixed, pinned=pinned, missing=missing, offset=offset,
                       seed=seed, split_seed=split_seed, policies=policies, prune=prune,
                       prune_warmup_evals=prune_warmup_evals, on_trial=on_trial)
    try:
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
    # A trial Ray never finished (a crash of the driver) stays RUNNING in the study; tell nothing.
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if running:
        logger.warning("trials %s are still marked running in the study", running)


def _ray_tuner(study_path: Path, study_name: str, data, dataset, fixed: MetaConfig, *, pinned: set[str],
               missing: int, offset: int, seed: int, split_seed: int, policies: Path, prune: bool,
               prune_warmup_evals: int, on_trial: Callable[[Any], None] | None):
    """Ray Tune's Tuner for :func:`run_ray`, once Ray runs: the search, ASHA and each trial's resources."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    resources: dict[str, float] = {"cpu": 1.0, "gpu": 1.0} if gpus else {"cpu": 1.0}
    search = _ray_search_class()(_Space(fixed, pinned), metric="score", mode="max",
                                 sampler=_sampler(seed, offset), study_name=study_name,
                                 storage=optuna.storages.RDBStorage(_storage_url(study_path)))
    evaluations = fixed.iterations // fixed.eval_every + (fixed.iterations % fixed.eval_every != 0)
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=evaluations + 1,
                               grace_period=max(1, prune_warmup_evals), reduction_factor=3)
                 if prune else None)
    trainable = tune.with_resources(
        tune.with_parameters(_ray_trainable, data=data, dataset=dataset, fixed=fixed, split_seed=split_seed,
                             policies=str(policies)), resources)
    return tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                                            num_samples=missing, metric="score", mode="max"),
                      run_config=tune.RunConfig(name=f"{study_name}-{offset}",
                                                storage_path=str(study_path.parent / "ray"), verbose=0,
                                                callbacks=[_ray_progress_class()(on_trial)]))


def _record_ray_result(ot_trial, result: dict) -> None:
    """A Ray trial's numbers, configuration and policy as user attributes of its Optuna trial."""
    for key in ("f1", "disparity", "feasible", "iteration", "seconds"):
        if key in result:
            ot_trial.set_user_attr(key, result[key])
    if result.get("config_json"):
        ot_trial.set_user_attr("config", json.loads(result["config_json"]))
    if result.get("policy"):  # named by the study's trial number, as the optuna backend does
        ot_trial.set_user_attr("policy", _rename_policy(Path(result["policy"]), ot_trial.number))


def _ray_search_class():
    """Ray's OptunaSearch, plus the trial's numbers as user attributes (a class made once Ray is imported)."""
    from ray.tune.search.optuna import OptunaSearch

    class _Search(OptunaSearch):
        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            ot_trial = getattr(self, "_ot_trials", {}).get(trial_id)
            if ot_trial is not None and result:
                _record_ray_result(ot_trial, result)
            if result and not error and not result.get("finished"):
                result = None  # stopped by the scheduler: Optuna records it as pruned, not complete
            super().on_trial_complete(trial_id, result=result, error=error)

        def save(self, checkpoint_path: str) -> None:
            """Nothing: the SQLite study is the search's state (a rerun resumes from it, not from Ray's)."""

    return _Search


def _ray_progress_class():
    """A Ray Tune callback that hands each finished or failed trial to ``report``; it runs in this process.
    Ray pickles the Tuner, so the callback is pickled without ``report`` (the bar is not kept)."""
    from ray import tune

    class _Progress(tune.Callback):
        def __init__(self, report: Callable[[Any], None] | None):
            self.report = report

        def __getstate__(self) -> dict:
            return {"report": None}

        def on_trial_complete(self, iteration, trials, trial, **info):
            if self.report:
                self.report(trial)

        def on_trial_error(self, iteration, trials, trial, **info):
            if self.report:
                self.report(trial)

    return _Progress


def summary_frame(study) -> pd.DataFrame:
    """One row per trial: number, state, value, f1, disparity, feasible, kept iteration, seconds, the
    configuration used (or the raw parameters), best first."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        row = {"trial": t.number, "state": t.state.name, "value": t.value, "f1": attrs.get("f1"),
               "disparity": attrs.get("disparity"), "feasible": attrs.get("feasible"),
               "iteration": attrs.get("iteration"), "seconds": attrs.get("seconds")}
        row.update(attrs.get("config") or t.params)
        if attrs.get("error"):
            row["error"] = attrs["error"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["value", "trial"], ascending=[False, True], na_position="last").reset_index(drop=True)


def summary_markdown(study, frame: pd.DataFrame, *, command: str, best_path: Path | None) -> str:
    from optuna.trial import TrialState

    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,)))
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    attrs = study.user_attrs
    fixed = attrs.get("fixed", {})
    feasible = int(frame["feasible"].fillna(False).astype(bool).sum()) if "feasible" in frame else 0
    lines = [f"# PANDA policy search: {attrs.get('dataset')}, sensitive = {attrs.get('sensitive')}, "
             f"ρ = {fixed.get('rho')} ({fixed.get('disparity')})", "",
             f"Command: `{command}`", "",
             f"Study `{study.study_name}`: " + ", ".join(f"{n} {state}" for state, n in counts.items())
             + f"; {feasible} trials reached ρ. Objective: the kept policy's F1 on the held-out tasks when its "
             "disparity is ≤ ρ, else −(disparity − ρ).", ""]
    if best_path is not None:
        lines += [f"Best policy: `{best_path}`", ""]
    searched = set(SEARCHED) - set(attrs.get("pinned", []))
    lines += ["Fixed settings: " + ", ".join(f"{k}={v}" for k, v in fixed.items() if k not in searched), ""]
    lines += [frame.to_markdown(index=False, floatfmt=".4g") if not frame.empty else "(no trials)", ""]
    return "\n".join(lines)


def study_figures(study, frame: pd.DataFrame, *, rho: float) -> dict:
    """Optimisation history, parameter importances (≥ 2 complete trials) and F1 vs disparity per trial."""
    import optuna
    import plotly.graph_objects as go
    from optuna.trial import TrialState

    figures: dict = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        figures["optimization_history"] = optuna.visualization.plot_optimization_history(study)
    if len(complete) >= 2:
        try:
            figures["param_importances"] = optuna.visualization.plot_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError) as error:  # e.g. every value equal
            logger.warning("parameter importances skipped (%s)", error)
    have = frame.dropna(subset=["f1", "disparity"]) if not frame.empty else frame
    if not have.empty:
        figure = go.Figure()
        for state, symbol in (("COMPLETE", "circle"), ("PRUNED", "x"), ("FAIL", "square"), ("RUNNING", "diamond")):
            part = have[have["state"] == state]
            if part.empty:
                continue
            figure.add_trace(go.Scatter(
                x=part["f1"], y=part["disparity"], mode="markers", name=state.lower(), customdata=part["trial"],
                marker=dict(symbol=symbol, size=10),
                hovertemplate="trial %{customdata}<br>F1 %{x:.3f}<br>disparity %{y:.3f}<extra></extra>"))
        figure.add_hline(y=rho, line_dash="dash", line_color="grey", annotation_text=f"constraint ρ = {rho:g}")
        figure.update_layout(xaxis_title="F1 (held-out tasks)", yaxis_title="disparity (held-out tasks)",
                             title="Trials: kept policy's F1 vs disparity (pruned: when stopped)",
                             margin=dict(l=10, r=10, t=40, b=10))
        figures["f1_vs_disparity"] = figure
    return figures


def export_best(study, out) -> Path | None:
    """Copy the best complete trial's policy (and its history) to ``out``; None when there is none."""
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and t.user_attrs.get("policy") and Path(t.user_attrs["policy"]).exists()]
    if not complete:
        return None
    best = max(complete, key=lambda t: (t.value, -t.number))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = Path(best.user_attrs["policy"])
    partial = out.with_name(out.name + ".partial")
    shutil.copyfile(source, partial)
    partial.replace(out)
    if source.with_suffix(".history.csv").exists():
        shutil.copyfile(source.with_suffix(".history.csv"), out.with_suffix(".history.csv"))
    out.with_suffix(".trial.json").write_text(json.dumps(
        {"study": study.study_name, "trial": best.number, "value": best.value, "params": best.params,
         **{k: v for k, v in best.user_attrs.items() if k != "policy"}}, indent=2, default=str) + "\n")
    return out


def identity(dataset, fixed: MetaConfig, split_seed: int, pinned: Iterable[str] = ()) -> dict[str, Any]:
    """What a resumed study must share with the one stored (data, split, settings not searched)."""
    return {"dataset": dataset.name, "sensitive": dataset.sensitive, "split_seed": split_seed,
            "fixed": asdict(fixed), "pinned": sorted(set(pinned) & set(SEARCHED))}
