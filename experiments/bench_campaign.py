"""Benchmark of the campaign optimiser against Sobol, Optuna samplers and Ax on the virtual lab.

Problem: the contract's example campaign (``experiments/campaign_td_vs_buffering.toml``):
maximise tap density, minimise particle expansion, subject to ICE >= 80 %, R500 >= 80 %,
Q_rev >= 1000 mAh/g, porosity * (1 - closed_pore_fraction) <= 0.6 and a successful synthesis.

Tasks (:mod:`benchmark_tasks`): the virtual lab's ``baseline`` scenario with the default
constants and with randomised constants (instance seeds 1, 2, 3; spec section 7), and four labs
whose truth departs from the campaign's physics prior on purpose: ``wide-7`` and ``wide-11``
(instances of a randomisation three times wider than the spec's), ``route-shift`` (the route
the prior ranks last becomes the best) and ``carbon-fatigue`` (a retention threshold the spec
does not have). Each strategy gets the same budget: 8 initial points then 10 batches of 4
(48 evaluations), noisy measurements (the lab's noise seed depends on seed and round only,
so every strategy sees the same noise stream).

Strategies: ``poreml`` (the campaign with its default settings: physics-informed GP whose
physics constants are calibrated to the campaign's data when a test shows the published ones
wrong, qLogNEHVI, feasibility model with the route-window prior, uncertainty widened by its own
calibration record), ``sobol`` (the campaign's
constraint-respecting Sobol sequence, all 48 points), and Optuna's
``NSGAIISampler`` (population 8), ``TPESampler`` (multivariate, constant liar, 8 start-up
trials) and ``GPSampler`` (8 start-up trials), all multi-objective with ``constraints_func``
(outcome constraints, parameter constraint and synthesis failure as constraint values). Optuna
proposes with the ask-and-tell interface, 4 trials per batch. ``ax``: Ax 1.3.1's ``Client``
(optional, ``pip install -e '.[ax]'``; without it the ``ax`` jobs fail with that message and the
others run): 8 Sobol points, then Ax's default modular BoTorch model (independent GPs per outcome,
``qLogNoisyExpectedHypervolumeImprovement``, ``qLogProbabilityOfFeasibility`` while no observed
point is feasible), 4 trials per ``get_next_trials``; the objective thresholds as Ax objective
thresholds, the outcome constraints as Ax outcome constraints, synthesis failure as a
``synthesis_ok >= 0.5`` outcome constraint. Ax's parameter constraints are linear only, so the
parameter constraint (nonlinear) reaches Ax as its slack, an outcome constraint
``parameter_slack_0 >= 0``; designs that break it count as ineligible in the score, as for every
strategy (details in :func:`run_ax`).

Score of a strategy after n evaluations: hypervolume of the NOISE-FREE values of the designs it
chose (only successful syntheses meeting every constraint count) divided by the hypervolume of
a dense reference front of the same task (2**20 Sobol designs through the noise-free lab,
cached under ``experiments/results/campaign_reference_<task>.json``). The reference point is the
objective thresholds (TD 0.3 g/cm3, expansion 150 %).

Outputs: one JSON per (task, strategy, seed) under ``experiments/results/campaign_runs/``
(existing ones are reused, so an interrupted run resumes and several processes can share the
work), then ``experiments/results/campaign_benchmark.json`` / ``.md`` (median scores at 24, 32 and
48 evaluations, median wall time of one model-based ``suggest`` of 4 per strategy that records it:
poreml and ax) and
``campaign_benchmark.png`` (median score against evaluations).

Usage::

    python experiments/bench_campaign.py                 # full: 8 tasks x 6 strategies x 5 seeds
    python experiments/bench_campaign.py --quick         # 2 tasks x 2 seeds, small reference
    python experiments/bench_campaign.py --jobs 2 --strategies poreml,sobol --seeds 0,1
    python experiments/bench_campaign.py --strategies ax  # Ax alone (pip install -e '.[ax]')
    python experiments/bench_campaign.py --strategies poreml-noprior  # an ablation (below)
    python experiments/bench_campaign.py --report-only   # aggregate what exists

Ablations (not in the default list): ``poreml-uncalibrated``, the campaign with the published
physics constants (``calibrate_prior=False``: the campaign as it was before calibration
existed), ``poreml-nowiden``, without the uncertainty widening of its model check
(``widen_uncertainty=False``), and ``poreml-noprior``, a feasibility model that learns from the
success labels alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchmark_tasks  # noqa: E402  (beside this script)

CONFIG = ROOT / "experiments" / "campaign_td_vs_buffering.toml"
RESULTS = ROOT / "experiments" / "results"
RUNS = RESULTS / "campaign_runs"

TASKS: tuple[str, ...] = tuple(benchmark_tasks.TASKS)
STRATEGIES: tuple[str, ...] = (
    "poreml",
    "sobol",
    "optuna-nsga2",
    "optuna-tpe",
    "optuna-gp",
    "ax",
)
ABLATIONS: tuple[str, ...] = ("poreml-uncalibrated", "poreml-nowiden", "poreml-noprior")
CHECKPOINTS: tuple[int, ...] = (24, 32, 48)
INITIAL = 8
BATCH = 4
REFERENCE_LOG2 = 20
QUICK_REFERENCE_LOG2 = 16


# -- problem --------------------------------------------------------------------------------------
def _config() -> Any:
    from poreml.design.config import CampaignConfig

    return CampaignConfig.from_toml(CONFIG)


def _lab(task: str) -> benchmark_tasks.TaskLab:
    return benchmark_tasks.task_lab(task)


def eligible_values(designs: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free objective values (TD, expansion) and the eligibility of each design.

    Args:
        designs: design columns (contract names), one row per design.
        task: task name.

    Returns:
        ``(Y, ok)``: ``Y`` of shape ``(n, 2)`` in original units, ``ok`` boolean ``(n,)``:
        successful synthesis, every outcome and parameter constraint met.
    """
    cfg = _config()
    space = cfg.search_space()
    truth = _lab(task).evaluate(designs[list(_design_columns())])
    ok = truth["feasible"].to_numpy(dtype=bool) & space.contains(designs, atol=1e-9)
    for c in cfg.outcome_constraints:
        ok &= np.asarray(c.is_satisfied(truth[c.name].to_numpy(dtype=float)), dtype=bool)
    Y = truth[[o.name for o in cfg.objectives]].to_numpy(dtype=float)
    return Y, ok


def _design_columns() -> tuple[str, ...]:
    from poreml.data.schema import DESIGN_COLUMNS

    return DESIGN_COLUMNS


def hv_of(Y: np.ndarray, ok: np.ndarray) -> float:
    """Hypervolume of the eligible rows of ``Y`` (TD max, expansion min) at the thresholds."""
    from poreml.optimize.pareto import hypervolume

    cfg = _config()
    signs = np.array([o.sign for o in cfg.objectives])
    ref = [o.maximization_threshold for o in cfg.objectives]
    return hypervolume((Y * signs)[ok], ref) if ok.any() else 0.0


# -- reference front ------------------------------------------------------------------------------
def reference(task: str, log2_n: int) -> dict[str, Any]:
    """Dense reference front of ``task`` from ``2**log2_n`` Sobol designs (cached).

    Designs: the campaign's parameters (route uniform, pore and Si size log-uniform), the
    parameter constraint applied, through the noise-free lab with the numpy physics.
    """
    path = RESULTS / f"campaign_reference_{task}_2e{log2_n}.json"
    if path.is_file():
        return json.loads(path.read_text())
    import torch

    from poreml.design.pareto import pareto_mask

    cfg = _config()
    space = cfg.search_space()
    lab = _lab(task)
    engine = torch.quasirandom.SobolEngine(space.dim, scramble=True, seed=12345)
    n_total, chunk = 2**log2_n, 2**16
    signs = np.array([o.sign for o in cfg.objectives])
    front_Y = np.zeros((0, 2))
    front_X: list[dict[str, Any]] = []
    kept = 0
    t0 = time.perf_counter()
    for _ in range(n_total // chunk):
        U = engine.draw(chunk, dtype=torch.double)
        k = len(space.categories.get("route", ())) or 1
        U[:, space.categorical_dims] = torch.floor(U[:, space.categorical_dims] * k).clamp(
            max=k - 1
        )
        U = U[(space.evaluate_constraints(U) >= 0).all(dim=-1)]
        values = {name: v.numpy() for name, v in space.decode(U).items()}
        values["route"] = values["route"].astype(int)
        out = lab.simulate(values)
        ok = np.asarray(out["feasible"], dtype=bool)
        for c in cfg.outcome_constraints:
            ok &= np.asarray(c.is_satisfied(np.asarray(out[c.name])), dtype=bool)
        kept += int(ok.sum())
        Y = np.stack([np.asarray(out[o.name]) for o in cfg.objectives], axis=-1)[ok]
        rows = [{n: float(v[i]) for n, v in values.items()} for i in np.flatnonzero(ok)]
        allY = np.concatenate([front_Y, Y])
        allX = front_X + rows
        mask = pareto_mask(allY * signs)
        front_Y = allY[mask]
        front_X = [x for x, m in zip(allX, mask, strict=True) if m]
    result = {
        "task": task,
        **benchmark_tasks.describe(task),
        "n_designs": n_total,
        "n_kept": kept,
        "front_size": len(front_Y),
        "hypervolume": hv_of(front_Y, np.ones(len(front_Y), dtype=bool)),
        "front": front_Y.tolist(),
        "front_designs": front_X,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return result


# -- strategies -----------------------------------------------------------------------------------
def noise_seed(seed: int, k: int) -> int:
    return 10_000 * seed + k


def run_campaign(
    task: str,
    seed: int,
    budget: int,
    *,
    model: bool,
    quick: bool,
    feasibility_prior: str,
    widen_uncertainty: bool = True,
    calibrate_prior: bool = True,
) -> dict:
    """The poreml campaign (``model=True``) or its Sobol sequence alone."""
    import dataclasses

    from poreml.optimize.acquisition import AcquisitionSettings
    from poreml.optimize.campaign import Campaign

    cfg = dataclasses.replace(_config(), seed=seed, initial_points=INITIAL if model else 10**6)
    settings = AcquisitionSettings.fast() if quick else AcquisitionSettings()
    settings = settings.replace(
        feasibility_prior=feasibility_prior,
        widen_uncertainty=widen_uncertainty,
        calibrate_prior=calibrate_prior,
    )
    campaign = Campaign(cfg, settings=settings)
    lab = _lab(task)
    designs: list[pd.DataFrame] = []
    suggest_s: list[dict[str, float]] = []
    n_rounds = math.ceil(budget / BATCH)
    for k in range(1, n_rounds + 1):
        n_obs = campaign.n_observations
        t0 = time.perf_counter()
        batch = campaign.ask(BATCH)
        dt = time.perf_counter() - t0
        if campaign.history.iloc[-1]["strategy"] != "sobol":
            suggest_s.append({"n_observations": n_obs, "seconds": dt})
        campaign.tell(lab.measure(batch, seed=noise_seed(seed, k)))
        designs.append(batch[list(_design_columns())])
    return {"designs": pd.concat(designs, ignore_index=True), "suggest": suggest_s}


def run_optuna(task: str, seed: int, budget: int, sampler_name: str) -> dict:
    """An Optuna sampler, multi-objective with constraints, batches of 4 via ask-and-tell."""
    import optuna

    from poreml.design.parameters import CategoricalParameter, ContinuousParameter

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # constraints_func is deprecated in Optuna 5 in favour of Trial.set_constraint; it still
    # works, and it is the interface every sampler here shares.
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    cfg = _config()
    space = cfg.search_space()
    lab = _lab(task)

    def constraints(trial: optuna.trial.FrozenTrial) -> Sequence[float]:
        return trial.user_attrs["constraints"]

    if sampler_name == "optuna-nsga2":
        sampler: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(
            population_size=INITIAL, seed=seed, constraints_func=constraints
        )
    elif sampler_name == "optuna-tpe":
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=INITIAL,
            seed=seed,
            multivariate=True,
            constant_liar=True,
            constraints_func=constraints,
        )
    elif sampler_name == "optuna-gp":
        sampler = optuna.samplers.GPSampler(
            n_startup_trials=INITIAL, seed=seed, constraints_func=constraints
        )
    else:
        raise ValueError(sampler_name)
    study = optuna.create_study(directions=[o.direction for o in cfg.objectives], sampler=sampler)
    dists: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in space.parameters:
        if isinstance(p, ContinuousParameter):
            dists[p.name] = optuna.distributions.FloatDistribution(
                p.bounds[0], p.bounds[1], log=p.scale == "log"
            )
        elif isinstance(p, CategoricalParameter) and len(p.values) > 1:
            dists[p.name] = optuna.distributions.CategoricalDistribution(list(p.values))
    fixed = space.fixed_values
    # GPSampler has no batch mode: four asks before a tell return four near-identical points, so
    # it gets its results one at a time (more information than the batch strategies get).
    # TPE (constant liar) and NSGA-II (a population) propose batches of their own.
    per_ask = 1 if sampler_name == "optuna-gp" else BATCH
    designs: list[pd.DataFrame] = []
    k = 0
    while sum(len(d) for d in designs) < budget:
        k += 1
        trials = [study.ask(dists) for _ in range(per_ask)]
        rows = [{**fixed, **t.params} for t in trials]
        batch = pd.DataFrame(rows)[list(_design_columns())]
        batch.insert(0, "candidate_id", [f"T{t.number:04d}" for t in trials])
        res = lab.measure(batch, seed=noise_seed(seed, k))
        slack = space.evaluate_constraints(space.to_tensor(batch))  # (4, c), >= 0 is feasible
        param_violation = (
            (-slack.min(dim=-1).values).tolist() if slack.shape[-1] else [0.0] * len(trials)
        )
        for i, (t, (_, r)) in enumerate(zip(trials, res.iterrows(), strict=True)):
            # Optuna: constraint values <= 0 are satisfied. Each is relative to its bound, so
            # no constraint dominates the total violation that TPE and NSGA-II rank by (a
            # capacity shortfall in mAh/g would otherwise swamp an ICE shortfall in %).
            cons = [
                float(-c.margin(r[c.name]) / max(abs(c.bound), 1.0))
                for c in cfg.outcome_constraints
            ]
            cons.append(float(param_violation[i]))
            cons.append(0.0 if bool(r["feasible"]) else 1.0)
            t.set_user_attr("constraints", cons)
            study.tell(t, [float(r[o.name]) for o in cfg.objectives])
        designs.append(batch[list(_design_columns())])
    return {"designs": pd.concat(designs, ignore_index=True), "suggest": []}


SYNTHESIS_METRIC = "synthesis_ok"


def _import_ax() -> Any:
    """Import Ax's ``Client`` API with Ax's logging at warnings and errors only.

    Ax logs every generated and completed trial (and its SQL storage set-up, at import) at
    INFO through a stream handler on its root logger; its module loggers carry their own INFO
    level, so the level goes on that handler (``set_stderr_log_level``), and INFO records are
    held back while the package imports. The warning that a call generated fewer trials than
    asked is dropped: :func:`run_ax` asks again for the rest and warns itself if it cannot.
    """
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        import ax
        from ax.utils.common.logger import set_stderr_log_level
    except ImportError as exc:
        raise RuntimeError(
            "the 'ax' strategy needs Ax (ax-platform 1.3.1): pip install -e '.[ax]'"
        ) from exc
    finally:
        logging.disable(previous)
    set_stderr_log_level(logging.WARNING)

    class _TopUp(logging.Filter):  # the short first model batch that run_ax fills up
        def filter(self, record: logging.LogRecord) -> bool:
            return "could be generated" not in record.getMessage()

    client_logger = logging.getLogger("ax.api.client")
    if not any(isinstance(f, _TopUp) for f in client_logger.filters):
        client_logger.addFilter(_TopUp())
    return ax


def run_ax(task: str, seed: int, budget: int) -> dict:
    """Ax's ``Client``: 8 Sobol points, then its modular BoTorch model, batches of 4.

    Configured as a careful Ax user would, from the same campaign config as every peer:

    * the six continuous parameters as ``RangeParameterConfig`` (log scaling where poreml's
      parameter is log-scaled), ``route`` as an unordered ``ChoiceParameterConfig``; fixed
      design columns are not Ax parameters and are added to each design;
    * ``configure_optimization``: maximise tap density, minimise expansion; the objective
      thresholds (the score's reference point) given as constraints on the objectives, which the
      Client turns into Ax objective thresholds; the ICE, retention and capacity constraints;
    * ``configure_generation_strategy``: method ``"fast"`` (Ax's default: the modular BoTorch
      model with its default GP; ``"quality"``, a fully Bayesian SAAS GP, takes minutes per
      batch on this machine), ``initialization_budget=8`` Sobol points seeded with ``seed`` and
      no centre point (so the start matches the other strategies'); ``random_seed=seed`` on the
      Client. Ax picks the acquisition per batch: ``qLogProbabilityOfFeasibility`` while no
      observed point meets every constraint and both thresholds, then
      ``qLogNoisyExpectedHypervolumeImprovement``; the class used for each batch is recorded
      in ``suggest``.

    Failed syntheses: a ``synthesis_ok`` metric (1 made, 0 failed) with the outcome constraint
    ``synthesis_ok >= 0.5``, and every measured metric reported for every trial. Marking the
    trial failed (``mark_trial_failed``) would throw the failure away: Ax models nothing from
    a FAILED trial and may propose the same region again. As a metric, a GP learns where the
    routes fail and the constraint steers the acquisition away. The lab measures what the route
    made (the design clipped to the route's window), and those values are reported too:
    leaving them out makes the trial partial, and Ax counts a trial as observed only when every
    metric of the optimisation config has data, so the switch from Sobol to the model stalls
    (``DataRequiredError``) when fewer than 4 of the 8 Sobol designs succeed (about 2 runs in
    3 at the lab's 36 % success rate), and its feasibility check drops partial trials. The
    Optuna samplers get the same values.

    The parameter constraint ``porosity * (1 - closed_pore_fraction) <= 0.6`` is nonlinear and
    Ax's parameter constraints are linear only, so Ax may propose designs that break it. Its
    slack (``0.6 - porosity * (1 - closed_pore_fraction)``) is reported as a metric with the
    outcome constraint ``parameter_slack_0 >= 0`` so the model learns to stay inside. A design
    that breaks it is still measured (the lab does not know the campaign's constraint) and the
    score counts it as ineligible (``eligible_values`` uses ``space.contains``), as for the
    Optuna samplers. The slack is exact but goes without an SEM, like every other metric: an
    SEM of 0 is raised to 1e-6 by GPyTorch with a warning, and one metric with an SEM among
    metrics without splits Ax's batched multi-output GP into a slower ``ModelListGP``.
    (Rewriting the space in open and closed porosity would make the constraint linear, but
    would give Ax other parameters and another Sobol start than every other strategy.)
    """
    ax = _import_ax()
    from poreml.design.parameters import CategoricalParameter, ContinuousParameter

    cfg = _config()
    space = cfg.search_space()
    lab = _lab(task)

    ax_params: list[Any] = []
    for p in space.parameters:
        if isinstance(p, ContinuousParameter):
            ax_params.append(
                ax.RangeParameterConfig(
                    name=p.name,
                    bounds=(float(p.bounds[0]), float(p.bounds[1])),
                    parameter_type="float",
                    scaling="log" if p.scale == "log" else "linear",
                )
            )
        elif isinstance(p, CategoricalParameter) and len(p.values) > 1:
            ax_params.append(
                ax.ChoiceParameterConfig(
                    name=p.name,
                    values=list(p.values),
                    parameter_type="str",
                    is_ordered=False,
                )
            )
    fixed = space.fixed_values
    slack_names = [f"parameter_slack_{i}" for i in range(len(cfg.parameter_constraints))]

    client = ax.Client(random_seed=seed)
    client.configure_experiment(parameters=ax_params, name=f"poreml-{task}-seed{seed}")
    objective = ", ".join(
        ("" if o.direction == "maximize" else "-") + o.name for o in cfg.objectives
    )
    thresholds = [
        f"{o.name} {'>=' if o.direction == 'maximize' else '<='} {o.threshold}"
        for o in cfg.objectives
    ]
    constraints = [f"{c.name} {c.op} {c.bound}" for c in cfg.outcome_constraints]
    constraints += [f"{SYNTHESIS_METRIC} >= 0.5", *(f"{n} >= 0" for n in slack_names)]
    client.configure_optimization(objective=objective, outcome_constraints=thresholds + constraints)
    client.configure_generation_strategy(
        method="fast",
        initialization_budget=INITIAL,
        initialization_random_seed=seed,
        initialize_with_center=False,
    )

    measured = [o.name for o in cfg.objectives] + [c.name for c in cfg.outcome_constraints]
    designs: list[pd.DataFrame] = []
    suggest_s: list[dict[str, Any]] = []
    n_obs = 0
    k = 0
    while n_obs < budget:
        k += 1
        want = min(BATCH, budget - n_obs)
        t0 = time.perf_counter()
        trials = client.get_next_trials(max_trials=want)
        node = _ax_node(client, trials)
        # The first call after the Sobol points stops at one trial: Ax caps the number of
        # trials by the limit of the node it is leaving (the spent Sobol budget) before it
        # switches to the model. Asking again for the rest fills the batch, the trials already
        # generated counting as pending.
        while 0 < len(trials) < want:
            more = client.get_next_trials(max_trials=want - len(trials))
            if not more:
                break
            trials.update(more)
        dt = time.perf_counter() - t0
        if len(trials) < want:
            warnings.warn(f"Ax proposed {len(trials)} of {want} trials in round {k}", stacklevel=1)
        if not trials:
            break
        if node["node"] != "Sobol":
            suggest_s.append({"n_observations": n_obs, "seconds": dt, **node})
        rows = [{**fixed, **params} for params in trials.values()]
        batch = pd.DataFrame(rows)[list(_design_columns())]
        batch.insert(0, "candidate_id", [f"T{i:04d}" for i in trials])
        res = lab.measure(batch, seed=noise_seed(seed, k))
        slack = space.evaluate_constraints(space.to_tensor(batch))  # (n, c), >= 0 feasible
        for j, (index, (_, r)) in enumerate(zip(trials, res.iterrows(), strict=True)):
            raw: dict[str, Any] = {name: float(r[name]) for name in measured}
            raw[SYNTHESIS_METRIC] = 1.0 if bool(r["feasible"]) else 0.0
            raw.update({n: float(slack[j, i]) for i, n in enumerate(slack_names)})
            client.complete_trial(trial_index=index, raw_data=raw)
        n_obs += len(trials)
        designs.append(batch[list(_design_columns())])
    return {"designs": pd.concat(designs, ignore_index=True), "suggest": suggest_s}


def _ax_node(client: Any, trials: dict[int, Any]) -> dict[str, str]:
    """Generation node, acquisition class and surrogate model Ax used for a batch.

    Read from Ax internals (the batch's generator run, the fitted adapter of the current
    node), so a field that is not there is recorded as an empty string instead of failing.
    """
    info = {"node": "", "acquisition": "", "model": ""}
    try:
        gr = client._experiment.trials[next(iter(trials))].generator_runs[0]
        info["node"] = str(gr._generation_node_name or "")
        generator = client._generation_strategy.adapter.generator
        info["acquisition"] = generator.botorch_acqf_class.__name__
        info["model"] = type(generator.surrogate.model).__name__
    except Exception:  # Sobol nodes have no acquisition; internals may move
        pass
    return info


def run_one(task: str, strategy: str, seed: int, budget: int, quick: bool) -> dict[str, Any]:
    """Run one (task, strategy, seed) and score it; the result is a JSON-ready dict."""
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if strategy in ("poreml", *ABLATIONS, "sobol"):
        out = run_campaign(
            task,
            seed,
            budget,
            model=strategy != "sobol",
            quick=quick,
            feasibility_prior="none" if strategy == "poreml-noprior" else "physics",
            widen_uncertainty=strategy != "poreml-nowiden",
            calibrate_prior=strategy != "poreml-uncalibrated",
        )
    elif strategy == "ax":
        out = run_ax(task, seed, budget)
    else:
        out = run_optuna(task, seed, budget, strategy)
    designs = out["designs"].iloc[:budget].reset_index(drop=True)
    Y, ok = eligible_values(designs, task)
    steps = list(range(INITIAL, budget + 1, BATCH))
    hv = {str(n): hv_of(Y[:n], ok[:n]) for n in steps}
    return {
        "task": task,
        "strategy": strategy,
        "seed": seed,
        "budget": budget,
        "quick": quick,
        "hypervolume": hv,
        "n_eligible": int(ok.sum()),
        "suggest": out["suggest"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "designs": designs.to_dict("records"),
    }


def _run_path(task: str, strategy: str, seed: int, quick: bool) -> Path:
    return RUNS / ("quick" if quick else "full") / task / strategy / f"seed{seed}.json"


def _job(task: str, strategy: str, seed: int, budget: int, quick: bool) -> str:
    path = _run_path(task, strategy, seed, quick)
    if path.is_file():
        return f"{path} (cached)"
    try:
        result = run_one(task, strategy, seed, budget, quick)
    except Exception:  # report and go on with the other jobs
        import traceback

        return f"FAILED {task} {strategy} seed {seed}:\n{traceback.format_exc()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return f"{path} ({result['wall_seconds']} s)"


# -- report ---------------------------------------------------------------------------------------
def aggregate(
    tasks: Sequence[str], strategies: Sequence[str], quick: bool, ref_log2: int
) -> dict[str, Any]:
    """Median scores per (task, strategy, evaluations) and the suggest timing.

    ``suggest_seconds``: poreml's model-based suggests of 4 with <= 60 observations;
    ``suggest_seconds_by_strategy``: the same for every strategy whose runs record them (and,
    for Ax, how many of its batches each acquisition function proposed).
    """
    out: dict[str, Any] = {
        "tasks": {},
        "suggest_seconds": None,
        "suggest_seconds_by_strategy": {},
        "runs": 0,
        "quick": quick,
    }
    suggest: dict[str, list[float]] = {}
    acquisitions: dict[str, dict[str, int]] = {}
    for task in tasks:
        ref = reference(task, ref_log2)
        entry: dict[str, Any] = {
            "reference_hypervolume": ref["hypervolume"],
            "reference_designs": ref["n_designs"],
            "reference_front_size": ref["front_size"],
            "eligible_share": ref["n_kept"] / ref["n_designs"],
            "strategies": {},
        }
        for strategy in strategies:
            runs = sorted((RUNS / ("quick" if quick else "full") / task / strategy).glob("*.json"))
            data = [json.loads(p.read_text()) for p in runs]
            if not data:
                continue
            out["runs"] += len(data)
            steps = sorted({int(n) for d in data for n in d["hypervolume"]})
            curve = {
                str(n): statistics.median(
                    d["hypervolume"][str(n)] / ref["hypervolume"]
                    for d in data
                    if str(n) in d["hypervolume"]
                )
                for n in steps
            }
            entry["strategies"][strategy] = {
                "seeds": [d["seed"] for d in data],
                "median_score": curve,
                "scores_at_48": [
                    d["hypervolume"].get("48", float("nan")) / ref["hypervolume"] for d in data
                ],
                "median_wall_seconds": statistics.median(d["wall_seconds"] for d in data),
            }
            calls = [s for d in data for s in d["suggest"] if s["n_observations"] <= 60]
            suggest.setdefault(strategy, []).extend(s["seconds"] for s in calls)
            for s in calls:
                if s.get("acquisition"):
                    counts = acquisitions.setdefault(strategy, {})
                    counts[s["acquisition"]] = counts.get(s["acquisition"], 0) + 1
        out["tasks"][task] = entry
    for strategy, seconds in suggest.items():
        if not seconds:
            continue
        timing: dict[str, Any] = {
            "median": statistics.median(seconds),
            "max": max(seconds),
            "n": len(seconds),
        }
        if strategy in acquisitions:
            timing["acquisition"] = acquisitions[strategy]
        out["suggest_seconds_by_strategy"][strategy] = timing
    out["suggest_seconds"] = out["suggest_seconds_by_strategy"].get("poreml")
    return out


def write_report(summary: dict[str, Any], strategies: Sequence[str]) -> None:
    """``campaign_benchmark.{json,md,png}``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "campaign_benchmark.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Campaign benchmark",
        "",
        "Score = hypervolume of the noise-free values of the chosen designs (successful, meeting "
        "every constraint) / hypervolume of the dense reference front of the task. Median over "
        "seeds. Budget: 8 initial + batches of 4.",
        "",
        f"Report written {date.today().isoformat()} from {summary['runs']} stored runs by "
        "`python experiments/bench_campaign.py"
        + (" --quick" if summary["quick"] else "")
        + ("" if tuple(strategies) == STRATEGIES else " --strategies " + ",".join(strategies))
        + "` (`make bench-campaign` runs the default strategies); each run's JSON under "
        "`campaign_runs/` holds its wall time, and runs made from 2026-12 on also when they "
        "finished and the machine's load average.",
        "",
        "| task | ref HV | strategy | seeds | @24 | @32 | @48 | min @48 | median wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, entry in summary["tasks"].items():
        for strategy in strategies:
            s = entry["strategies"].get(strategy)
            if s is None:
                continue
            cells = [f"{s['median_score'].get(str(n), float('nan')):.3f}" for n in CHECKPOINTS]
            cells.append(f"{min(s['scores_at_48']):.3f}")
            lines.append(
                f"| {task} | {entry['reference_hypervolume']:.1f} | {strategy} | "
                f"{len(s['seeds'])} | " + " | ".join(cells) + f" | {s['median_wall_seconds']:.1f} |"
            )
    lines += ["", *_targets(summary), "", "Tasks:", ""]
    lines += [
        f"- `{task}`{' (departs from the prior on purpose)' if info['misspecified'] else ''}: "
        f"{info['description']}; {entry['eligible_share']:.1%} of the reference designs are "
        "eligible (made, every constraint met)"
        for task, entry in summary["tasks"].items()
        for info in [benchmark_tasks.describe(task)]
    ]
    t = summary.get("suggest_seconds")
    lines += [
        "",
        "Wall time of one model-based `suggest` of 4 with <= 60 observations (poreml; the runs "
        "share the 2 cores with others, see each run's load average; `python "
        "experiments/profile_suggest.py` times it on a quieter machine): "
        + (f"median {t['median']:.1f} s, max {t['max']:.1f} s over {t['n']} calls" if t else "n/a")
        + f" on this machine ({os.cpu_count()} CPUs, shared).",
    ]
    by_strategy = summary.get("suggest_seconds_by_strategy", {})
    for strategy in strategies:
        t = by_strategy.get(strategy)
        if strategy == "poreml" or t is None:
            continue
        line = (
            f"Same for {strategy}: median {t['median']:.1f} s, max {t['max']:.1f} s over "
            f"{t['n']} calls"
        )
        if t.get("acquisition"):
            line += " (" + ", ".join(f"{a} {n}" for a, n in sorted(t["acquisition"].items())) + ")"
        lines.append("")
        lines.append(line + ".")
    lines.append("")
    (RESULTS / "campaign_benchmark.md").write_text("\n".join(lines))
    _plot(summary, strategies)


def _targets(summary: dict[str, Any], ours: str = "poreml") -> list[str]:
    """The campaign's targets per task: median @48 >= 0.97, every run @48 >= 0.90, and the
    median @24 at least the best peer's median @48."""
    lines = [
        f"Targets for `{ours}` (48 evaluations: median >= 0.97, every run >= 0.90; after 24 "
        "evaluations at least the best peer after 48):",
        "",
        "| task | median @48 | min @48 | @24 | best peer @48 | all met |",
        "|---|---|---|---|---|---|",
    ]
    for task, entry in summary["tasks"].items():
        mine = entry["strategies"].get(ours)
        if mine is None:
            continue
        peers = {
            name: s["median_score"].get("48", float("nan"))
            for name, s in entry["strategies"].items()
            if not name.startswith(ours)
        }
        best = max(peers, key=lambda k: peers[k]) if peers else None
        med48 = mine["median_score"].get("48", float("nan"))
        low = min(mine["scores_at_48"])
        at24 = mine["median_score"].get("24", float("nan"))
        met = med48 >= 0.97 and low >= 0.90 and (best is None or at24 >= peers[best])
        peer = f"{peers[best]:.3f} ({best})" if best else "n/a"
        lines.append(
            f"| {task} | {med48:.3f} | {low:.3f} | {at24:.3f} | {peer} | {'yes' if met else 'no'} |"
        )
    return lines


def _plot(summary: dict[str, Any], strategies: Sequence[str]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(summary["tasks"])
    if not tasks:
        return
    cols = min(4, len(tasks))
    rows = -(-len(tasks) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), dpi=110)
    FigureCanvasAgg(fig)
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = list(grid.ravel())
    for ax in axes[len(tasks) :]:
        ax.set_visible(False)
    for ax, task in zip(axes, tasks, strict=False):
        for strategy in strategies:
            s = summary["tasks"][task]["strategies"].get(strategy)
            if s is None:
                continue
            xs = sorted(int(n) for n in s["median_score"])
            ax.plot(xs, [s["median_score"][str(n)] for n in xs], marker="o", ms=3, label=strategy)
        ax.set_title(task)
        ax.set_xlabel("evaluations")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    for row in grid:
        row[0].set_ylabel("median HV / reference HV")
    axes[len(tasks) - 1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "campaign_benchmark.png")


# -- main -----------------------------------------------------------------------------------------
def _parse_list(text: str, allowed: Sequence[str]) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise SystemExit(f"unknown {bad}; choose from {', '.join(allowed)}")
    return items


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 tasks x 2 seeds, small settings")
    parser.add_argument("--tasks", default=None, help="comma list of " + ", ".join(TASKS))
    parser.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help="comma list; also: " + ", ".join(ABLATIONS),
    )
    parser.add_argument("--seeds", default=None, help="comma list of integers (default 0-4)")
    parser.add_argument("--budget", type=int, default=48)
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes")
    parser.add_argument("--report-only", action="store_true", help="aggregate existing runs")
    args = parser.parse_args(argv)
    tasks = (
        _parse_list(args.tasks, list(TASKS))
        if args.tasks
        else (["baseline", "instance-1"] if args.quick else list(TASKS))
    )
    strategies = _parse_list(args.strategies, (*STRATEGIES, *ABLATIONS))
    seeds = (
        [int(s) for s in args.seeds.split(",")]
        if args.seeds
        else ([0, 1] if args.quick else [0, 1, 2, 3, 4])
    )
    ref_log2 = QUICK_REFERENCE_LOG2 if args.quick else REFERENCE_LOG2
    for task in tasks:
        ref = reference(task, ref_log2)
        print(
            f"reference {task}: HV {ref['hypervolume']:.2f} ({ref['front_size']} front points)",
            flush=True,
        )
    if not args.report_only:
        jobs = [(t, s, k) for k in seeds for t in tasks for s in strategies]
        run: Callable[..., str] = _job
        if args.jobs > 1:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = [pool.submit(run, t, s, k, args.budget, args.quick) for t, s, k in jobs]
                for f in as_completed(futures):
                    print(f.result(), flush=True)
        else:
            for t, s, k in jobs:
                print(run(t, s, k, args.budget, args.quick), flush=True)
    summary = aggregate(tasks, strategies, args.quick, ref_log2)
    write_report(summary, strategies)
    print((RESULTS / "campaign_benchmark.md").read_text())


if __name__ == "__main__":
    main()
