"""GPU benchmark (a script, not a test): deep-ensemble training and batched qLogNEHVI, CUDA vs CPU.

Measures on the CPU always, and on CUDA when ``torch.cuda.is_available()``; without a CUDA
device it says so in one line (:data:`NO_CUDA_LINE`) and still gives the CPU figures. Writes
``experiments/results/gpu_benchmark.{json,md}``.

1. **Deep-ensemble training**: :class:`~poreml.surrogates.ensemble.EnsembleSurrogate` ``fit``
   on virtual-lab rows of the contract box (:func:`poreml.surrogates.evaluation.virtual_lab_data`)
   at several sizes, a fixed number of epochs (``patience`` above ``epochs``, so no early stop):
   seconds per fit and rows/s (rows × epochs / s). The CPU can be capped at the smaller sizes
   (``--quick``; the skipped ones are listed with the reason and an estimate). One small
   warm-up fit per device first.
2. **Batched qLogNEHVI**: the campaign model is fitted once, on the CPU, by the project's
   :func:`~poreml.optimize.models.fit_campaign_model` on virtual-lab observations of the
   contract campaign (``experiments/campaign_td_vs_buffering.toml``), with the project's
   ``native-gp`` outcome models (one BoTorch ``SingleTaskGP`` per outcome) and the physics-prior
   feasibility model. The campaign's default ``gp`` surrogate (the physics-informed GP) keeps its
   fitted GPs inside a plain Python object that ``Model.to(device)`` does not reach, so it cannot
   be moved to CUDA as is; ``native-gp`` is the same campaign model with plain GPs for the
   outcomes. Per device the model and tensors are moved with ``.to(device)``, the acquisition is
   built by the project's :func:`~poreml.optimize.acquisition.build_acquisition` (qLogNEHVI,
   outcome constraints and feasibility inside), and then timed:

   a. evaluation on N raw points (q = 1) in batches: points/s;
   b. a *suggest-equivalent*: BoTorch ``optimize_acqf`` with q = 4 (sequential greedy), the
      project's ``num_restarts`` / ``raw_samples`` / ``maxiter`` defaults
      (:class:`~poreml.optimize.strategy.AcquisitionSettings`; no retry when a restart stops at
      ``maxiter``, as in the project), on the box with the route fixed to one category and
      without the parameter constraint. This times the acquisition optimisation on the device;
      it is not the project's full mixed-space ``suggest`` (every route refined, constraint
      handling, spray points), which runs on the CPU.

   If the campaign model fails on CUDA, the error is recorded and the acquisition part is
   repeated on every device with a plain BoTorch ``ModelListGP`` (``SingleTaskGP`` per output,
   the feasibility output a GP on the 0/1 success labels) fitted on the same observations.

CUDA timers stop after ``torch.cuda.synchronize()``. The CPU side runs with ``--cpu-threads``
torch threads (default 1, the campaign's own ``torch_threads``; 0 keeps torch's setting, e.g. for
a many-core CPU baseline on a GPU machine). Timings depend on the machine: the results record
CPU count, torch threads, the load average before and after, and the device names.

Usage::

    .venv/bin/python experiments/bench_gpu.py              # ~2-3 min CPU-only on 2 busy cores
    .venv/bin/python experiments/bench_gpu.py --quick      # ~30 s smoke run
    .venv/bin/python experiments/bench_gpu.py --device cpu # one device only
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO))

from poreml.data.io import write_json, write_text  # noqa: E402
from poreml.data.schema import DESIGN_COLUMNS  # noqa: E402
from poreml.design.config import CampaignConfig  # noqa: E402
from poreml.design.search_space import SearchSpace  # noqa: E402
from poreml.optimize.acquisition import (  # noqa: E402
    AcquisitionSettings,
    ProblemSpec,
    build_acquisition,
    torch_threads,
)
from poreml.optimize.models import (  # noqa: E402
    FEASIBLE_OUTPUT,
    NATIVE_SURROGATE,
    fit_campaign_model,
)
from poreml.surrogates.base import TARGETS  # noqa: E402
from poreml.surrogates.ensemble import EnsembleSurrogate  # noqa: E402
from poreml.surrogates.evaluation import virtual_lab_data  # noqa: E402
from poreml.virtual_lab.lab import VirtualLab  # noqa: E402

RESULTS = REPO / "experiments" / "results"
CONFIG = REPO / "experiments" / "campaign_td_vs_buffering.toml"
STEM = "gpu_benchmark"

NO_CUDA_LINE = (
    "no CUDA device: CPU figures only (run `make bench-gpu` on a GPU machine for the comparison)"
)

SUGGEST_NOTE = (
    "suggest-equivalent: BoTorch optimize_acqf, q = {q} sequential greedy, {restarts} restarts, "
    "{raw} raw samples, maxiter {maxiter} (no retry), route fixed to {route!r}, box only (the "
    "parameter constraint left out). It times the acquisition optimisation on the device, not the "
    "project's full mixed-space `suggest` (every route, constraints, spray points), which runs "
    "on the CPU."
)


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run.

    Attributes:
        ensemble_rows: training-set sizes (rows), largest last.
        cpu_max_rows: largest size trained on the CPU (bigger ones are CUDA-only).
        epochs: epochs of every ensemble fit (no early stopping).
        members: ensemble members.
        batch_size: ensemble minibatch size.
        observations: virtual-lab observations the campaign model is fitted on.
        acq_points: raw-point counts N of the acquisition evaluation (q = 1).
        cpu_max_points: largest N evaluated on the CPU.
        acq_batch: points per acquisition call.
        q: points per suggest-equivalent.
        suggest_repeats: timed suggest-equivalents per device (median reported).
        cpu_threads: torch CPU threads while measuring (0: torch's own setting, e.g. from
            ``OMP_NUM_THREADS``). Default 1, the campaign's ``torch_threads``: the matrices are
            small, and on a shared, busy 2-core machine two threads ran the model fit and the
            acquisition 5-35 times slower than one.
        settings: acquisition effort (restarts, raw samples, MC samples, maxiter).
        seed: seed of data, fits and optimisers.
    """

    ensemble_rows: tuple[int, ...] = (2_000, 20_000, 100_000)
    cpu_max_rows: int = 100_000
    epochs: int = 5
    members: int = 5
    batch_size: int = 1024
    observations: int = 48
    acq_points: tuple[int, ...] = (256, 4_096, 65_536)
    cpu_max_points: int = 65_536
    acq_batch: int = 1024
    q: int = 4
    suggest_repeats: int = 1
    cpu_threads: int = 1
    settings: AcquisitionSettings = field(default_factory=AcquisitionSettings)
    seed: int = 0


FULL = Plan()
QUICK = Plan(
    cpu_max_rows=20_000,
    epochs=2,
    observations=24,
    cpu_max_points=4_096,
    q=2,
)


# ---- devices and timing --------------------------------------------------------------------


def choose_devices(requested: str) -> tuple[list[str], list[str]]:
    """Devices to measure and the lines that explain the choice.

    Args:
        requested: ``"all"`` (CPU, plus CUDA when available), ``"cpu"`` or ``"cuda"``.

    Returns:
        ``(devices, lines)``; without CUDA, ``lines`` holds :data:`NO_CUDA_LINE` (and why, when
        this torch build has no CUDA support) and ``"cuda"`` falls back to the CPU.
    """
    if requested not in ("all", "cpu", "cuda"):
        raise ValueError(f"--device: expected all, cpu or cuda (got {requested!r})")
    if requested == "cpu":
        return ["cpu"], ["CPU only (--device cpu)"]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        line = f"CUDA device: {names[0]} (torch {torch.__version__}, CUDA {torch.version.cuda})"
        return (["cpu", "cuda"] if requested == "all" else ["cuda"]), [line]
    lines = [NO_CUDA_LINE]
    if torch.version.cuda is None:
        lines.append(
            f"torch {torch.__version__} is a CPU-only build: on a GPU machine install a CUDA "
            "build of torch in the virtual environment first"
        )
    return ["cpu"], lines


def sync(device: str) -> None:
    """Wait for queued CUDA work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``fn()`` takes on ``device`` (CUDA synchronised before and after) and its value."""
    sync(device)
    t0 = time.perf_counter()
    value = fn()
    sync(device)
    return time.perf_counter() - t0, value


def machine() -> dict[str, Any]:
    """Where the numbers were taken."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda_devices": (
            [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if cuda
            else []
        ),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


# ---- 1. deep-ensemble training -------------------------------------------------------------


def _ensemble(device: str, epochs: int, plan: Plan) -> EnsembleSurrogate:
    return EnsembleSurrogate(
        n_members=plan.members,
        epochs=epochs,
        patience=epochs + 1,  # fixed epochs: never stop early
        batch_size=plan.batch_size,
        device=device,
        random_state=plan.seed,
    )


def bench_ensemble(plan: Plan, devices: Sequence[str]) -> dict[str, Any]:
    """Ensemble fit time and rows/s per device and size (module doc, part 1)."""
    data = virtual_lab_data(max(plan.ensemble_rows), seed=plan.seed)
    X, y = data[list(DESIGN_COLUMNS)], data[list(TARGETS)]
    rows: list[dict[str, Any]] = []
    skipped: list[int] = []
    for device in devices:
        # Warm-up: allocator, kernels and autograd graph on a small fit, not timed.
        _ensemble(device, 1, plan).fit(X.iloc[:256], y.iloc[:256])
        for n in plan.ensemble_rows:
            if device == "cpu" and n > plan.cpu_max_rows:
                skipped.append(n)
                continue
            model = _ensemble(device, plan.epochs, plan)
            seconds, _ = timed(device, lambda m=model, k=n: m.fit(X.iloc[:k], y.iloc[:k]))
            epochs = int(model.n_epochs_)
            rows.append(
                {
                    "device": device,
                    "ran_on": str(model.device_),
                    "rows": n,
                    "epochs": epochs,
                    "seconds": round(seconds, 3),
                    "rows_per_second": round(n * epochs / seconds, 1),
                }
            )
    add_speedups(rows, key="rows", value="rows_per_second", higher_is_faster=True)
    notes = [
        f"cpu: {n:,} rows skipped, CPU capped at {plan.cpu_max_rows:,} rows to keep the run "
        f"short{_estimate(rows, 'rows', 'rows_per_second', n * plan.epochs)}"
        for n in skipped
    ]
    return {
        "model": "EnsembleSurrogate",
        "members": plan.members,
        "hidden_sizes": list(EnsembleSurrogate().hidden_sizes),
        "batch_size": plan.batch_size,
        "epochs": plan.epochs,
        "targets": len(TARGETS),
        "data": "virtual_lab_data (contract box, baseline scenario, noisy)",
        "rows": rows,
        "skipped": notes,
    }


def _estimate(rows: list[dict[str, Any]], key: str, rate: str, work: float) -> str:
    """``" (about N s at the CPU rate measured at size S)"``, or "" without a CPU row."""
    cpu = [r for r in rows if r["device"] == "cpu"]
    if not cpu:
        return ""
    last = max(cpu, key=lambda r: r[key])
    return f" (about {work / last[rate]:.0f} s at the CPU rate measured at {last[key]:,})"


def add_speedups(
    rows: list[dict[str, Any]], *, key: str, value: str, higher_is_faster: bool
) -> None:
    """Add ``speedup`` (CUDA over CPU) to the CUDA rows whose ``key`` has a CPU row too."""
    cpu = {r[key]: r[value] for r in rows if r["device"] == "cpu"}
    for r in rows:
        if r["device"] != "cpu" and r[key] in cpu and r[value] and cpu[r[key]]:
            ratio = r[value] / cpu[r[key]] if higher_is_faster else cpu[r[key]] / r[value]
            r["speedup"] = round(ratio, 2)


# ---- 2. batched qLogNEHVI ------------------------------------------------------------------


def campaign_observations(config: CampaignConfig, n: int, seed: int) -> pd.DataFrame:
    """``n`` space-filling designs of the campaign measured by the virtual lab."""
    designs = config.search_space().sample(n, seed)
    return VirtualLab("baseline").measure(designs, seed=seed)


def fit_plain_botorch(
    observations: pd.DataFrame, space: SearchSpace, outputs: Sequence[str], seed: int
) -> Any:
    """A plain BoTorch ``ModelListGP`` over ``outputs`` on the encoded space (the fallback).

    One ``SingleTaskGP`` (BoTorch defaults, ``Normalize`` to the search-space bounds,
    ``Standardize``) per output on the encoded tensor (the route code as a plain input), on the
    rows where the output was measured; the ``feasible`` output is a GP on the 0/1 success
    labels.
    """
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import ModelListGP, SingleTaskGP
    from botorch.models.transforms.input import Normalize
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import SumMarginalLogLikelihood

    inside = space.contains(observations[list(DESIGN_COLUMNS)])
    frame = observations.loc[inside]
    X = space.to_tensor(frame)
    gps = []
    for name in outputs:
        if name == FEASIBLE_OUTPUT:
            y = torch.as_tensor(frame["feasible"].to_numpy(dtype=float), dtype=torch.double)
        else:
            y = torch.as_tensor(
                pd.to_numeric(frame[name]).to_numpy(dtype=float, copy=True), dtype=torch.double
            )
        ok = torch.isfinite(y)
        gps.append(
            SingleTaskGP(
                X[ok],
                y[ok].unsqueeze(-1),
                input_transform=Normalize(d=space.dim, bounds=space.bounds),
                outcome_transform=Standardize(m=1),
            )
        )
    model = ModelListGP(*gps)
    with torch.random.fork_rng(), warnings.catch_warnings():
        torch.manual_seed(seed)
        warnings.simplefilter("ignore")  # BoTorch's fit and data-scaling hints
        fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
    return model.eval()


def move_model(model: Any, device: str) -> Any:
    """``model.to(device)`` with GPyTorch's cached prediction strategies dropped (they hold
    tensors of the old device and are rebuilt on the next posterior)."""
    from gpytorch.models import ExactGP

    model = model.to(device)
    for module in model.modules():
        if isinstance(module, ExactGP):
            module.prediction_strategy = None
    return model


def _acq_on_device(
    device: str,
    model: Any,
    spec: ProblemSpec,
    space: SearchSpace,
    X_base: Tensor,
    plan: Plan,
    route: tuple[int, float, str],
    raw_points: Tensor,
) -> dict[str, Any]:
    from botorch.optim import optimize_acqf

    settings = plan.settings
    model = move_model(model, device)
    Xb = X_base.to(device)
    acqf = build_acquisition("qlognehvi", model, spec, Xb, None, settings, plan.seed)
    # Warm-up: one forward and backward pass (kernels, caches, allocator), not timed.
    warm = raw_points[:64].to(device).unsqueeze(-2).requires_grad_(True)
    acqf(warm).sum().backward()
    sync(device)

    evals: list[dict[str, Any]] = []
    skipped: list[str] = []
    for n in plan.acq_points:
        if device == "cpu" and n > plan.cpu_max_points:
            skipped.append(
                f"cpu: N = {n:,} skipped, CPU capped at {plan.cpu_max_points:,} points to keep "
                f"the run short{_estimate(evals, 'points', 'points_per_second', n)}"
            )
            continue
        X = raw_points[:n].to(device).unsqueeze(-2)

        def evaluate(X: Tensor = X) -> Tensor:
            with torch.no_grad():
                return torch.cat([acqf(chunk) for chunk in X.split(plan.acq_batch)])

        seconds, values = timed(device, evaluate)
        evals.append(
            {
                "device": device,
                "points": n,
                "batch": plan.acq_batch,
                "seconds": round(seconds, 4),
                "points_per_second": round(n / seconds, 1),
                "finite": int(torch.isfinite(values).sum()),
            }
        )

    dim, code, _ = route
    bounds = space.bounds.to(device=device, dtype=X_base.dtype)
    times: list[float] = []
    for r in range(plan.suggest_repeats):
        torch.manual_seed(plan.seed + r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BoTorch optimisation warnings: timing only
            seconds, (cand, _) = timed(
                device,
                lambda: optimize_acqf(
                    acqf,
                    bounds=bounds,
                    q=plan.q,
                    num_restarts=settings.num_restarts,
                    raw_samples=settings.raw_samples,
                    options={"maxiter": settings.maxiter},
                    sequential=True,
                    fixed_features={dim: code},
                    # As the project's refinement: a restart that hits maxiter is kept, not
                    # retried from new starting points (BoTorch's default would retry).
                    retry_on_optimization_warning=False,
                ),
            )
        times.append(seconds)
    times.sort()
    suggest = {
        "device": device,
        "q": plan.q,
        "seconds": round(times[len(times) // 2], 3),
        "repeats": len(times),
        "candidates_shape": list(cand.shape),
    }
    return {"evaluations": evals, "suggest": suggest, "skipped": skipped}


def bench_acquisition(
    plan: Plan,
    devices: Sequence[str],
    *,
    model_kind: str = "campaign",
    config_path: Path = CONFIG,
) -> dict[str, Any]:
    """Batched qLogNEHVI per device (module doc, part 2).

    Args:
        plan: sizes and acquisition settings.
        devices: devices to measure (CPU first: the model moves from device to device).
        model_kind: ``"campaign"`` (the project's campaign model, ``native-gp`` outcomes) or
            ``"plain-botorch"`` (:func:`fit_plain_botorch`).
        config_path: the campaign config.

    Returns:
        Model description, fit time, and per device either the timings or ``error``.
    """
    config = CampaignConfig.from_toml(config_path)
    space = config.search_space()
    settings = plan.settings
    obs = campaign_observations(config, plan.observations, plan.seed)
    t0 = time.perf_counter()
    fitted = fit_campaign_model(
        obs,
        space,
        config.outcome_names,
        surrogate=NATIVE_SURROGATE,
        seed=plan.seed,
        use_failed=settings.use_failed_measurements,
        feasibility_prior=settings.feasibility_prior,
    )
    if model_kind == "campaign":
        model, sources = fitted.model, dict(fitted.sources)
    elif model_kind == "plain-botorch":
        t0 = time.perf_counter()
        model = fit_plain_botorch(obs, space, fitted.outcome_names, plan.seed)
        sources = {name: "plain SingleTaskGP" for name in fitted.outcome_names}
    else:
        raise ValueError(f"model_kind: expected campaign or plain-botorch (got {model_kind!r})")
    fit_seconds = time.perf_counter() - t0
    spec = ProblemSpec(
        outcome_names=fitted.outcome_names,
        objectives=config.objectives,
        outcome_constraints=config.outcome_constraints,
        scales=fitted.scales,
        feasibility_index=fitted.feasibility_index,
    )
    X_base = space.to_tensor(obs.loc[space.contains(obs[list(DESIGN_COLUMNS)])])
    dim, code = next(iter(space.fixed_features_list()[0].items()))
    name = space.categories["route"][int(code)]
    raw_points = space.sample_tensor(max(plan.acq_points), seed=plan.seed + 1)
    result: dict[str, Any] = {
        "model": model_kind,
        "sources": sources,
        "outputs": list(fitted.outcome_names),
        "observations": len(obs),
        "baseline_points": int(X_base.shape[0]),
        "feasible_observations": int(obs["feasible"].sum()),
        "fit_seconds_cpu": round(fit_seconds, 2),
        "dtype": str(X_base.dtype).replace("torch.", ""),
        "settings": asdict(settings),
        "route": name,
        "suggest_note": SUGGEST_NOTE.format(
            q=plan.q,
            restarts=settings.num_restarts,
            raw=settings.raw_samples,
            maxiter=settings.maxiter,
            route=name,
        ),
        "evaluations": [],
        "suggest": [],
        "skipped": [],
        "errors": {},
    }
    for device in devices:
        try:
            part = _acq_on_device(
                device, model, spec, space, X_base, plan, (dim, code, name), raw_points
            )
        except Exception as err:  # recorded, and the caller may fall back on a plain model
            result["errors"][device] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            continue
        result["evaluations"] += part["evaluations"]
        result["suggest"].append(part["suggest"])
        result["skipped"] += part["skipped"]
    add_speedups(result["evaluations"], key="points", value="seconds", higher_is_faster=False)
    add_speedups(result["suggest"], key="q", value="seconds", higher_is_faster=False)
    return result


# ---- run and report ------------------------------------------------------------------------


def run_benchmark(
    plan: Plan, requested: str = "all", *, parts: Sequence[str] = ("ensemble", "acquisition")
) -> dict[str, Any]:
    """Run the benchmark and return the results (nothing written)."""
    devices, lines = choose_devices(requested)
    for line in lines:
        print(line, flush=True)
    results: dict[str, Any] = {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_before": load_average(),
        "devices": devices,
        "device_lines": lines,
        "plan": {k: v for k, v in asdict(plan).items() if k != "settings"},
    }
    t0 = time.perf_counter()
    with torch_threads(plan.cpu_threads):
        results["torch_threads_measured"] = torch.get_num_threads()
        if "ensemble" in parts:
            print("deep-ensemble training ...", flush=True)
            results["ensemble"] = bench_ensemble(plan, devices)
        if "acquisition" in parts:
            print("batched qLogNEHVI ...", flush=True)
            acq = bench_acquisition(plan, devices)
            if acq["errors"]:
                print(f"campaign model failed: {acq['errors']}; plain BoTorch model", flush=True)
                acq = {
                    "campaign_model": acq,
                    **bench_acquisition(plan, devices, model_kind="plain-botorch"),
                }
            results["acquisition"] = acq
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["load_average_after"] = load_average()
    return results


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def report(results: dict[str, Any]) -> str:
    """Markdown of the results."""
    m = results["machine"]
    out = [
        "# GPU benchmark: deep-ensemble training and batched qLogNEHVI",
        "",
        f"Command: `{results['command']}`, run {results['date_utc']} (UTC), "
        f"{results['seconds']} s.",
        "",
        f"Machine: {m['cpu']} ({m['cpu_count']} CPUs visible), {m['platform']}; Python "
        f"{m['python']}, torch {m['torch']} (CUDA build: {m['torch_cuda_build'] or 'none'}), "
        f"{results['torch_threads_measured']} torch thread(s) while measuring (torch's own "
        f"setting {m['torch_threads']}, OMP_NUM_THREADS={m['omp_num_threads']}); CUDA "
        f"devices: {', '.join(m['cuda_devices']) or 'none'}.",
        "",
        f"Load average (1, 5, 15 min) before {results['load_average_before']}, after "
        f"{results['load_average_after']}.",
        "",
        *[
            f"**{line}**" if line.startswith("no CUDA") else line
            for line in results["device_lines"]
        ],
    ]
    if "ensemble" in results:
        e = results["ensemble"]
        out += [
            "",
            "## Deep-ensemble training",
            "",
            f"`EnsembleSurrogate.fit`: {e['members']} members, hidden {e['hidden_sizes']}, "
            f"{e['targets']} targets, batch {e['batch_size']}, {e['epochs']} epochs (no early "
            f"stop), data: {e['data']}. rows/s = rows × epochs / seconds per fit (encoding and "
            "per-epoch validation included).",
            "",
            "| device | rows | epochs | s per fit | rows/s | speed-up CUDA/CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in e["rows"]:
            out.append(
                f"| {r['device']} | {r['rows']:,} | {r['epochs']} | {r['seconds']:.2f} | "
                f"{_num(r['rows_per_second'])} | {r.get('speedup', '–')} |"
            )
        out += [f"\n* {s}" for s in e["skipped"]]
    if "acquisition" in results:
        a = results["acquisition"]
        out += ["", "## Batched qLogNEHVI", ""]
        if "campaign_model" in a:
            c = a["campaign_model"]
            out += [
                f"The campaign model failed on {', '.join(c['errors'])}: "
                + "; ".join(f"{k}: `{v}`" for k, v in c["errors"].items())
                + ". Figures below use a plain BoTorch `ModelListGP` fitted on the same "
                "observations.",
                "",
            ]
        out += [
            f"Model `{a['model']}` ({', '.join(f'{k}: {v}' for k, v in a['sources'].items())}), "
            f"fitted on the CPU in {a['fit_seconds_cpu']} s on {a['observations']} virtual-lab "
            f"observations of the contract campaign ({a['feasible_observations']} feasible, "
            f"{a['baseline_points']} baseline points), {a['dtype']}; qLogNEHVI from "
            f"`build_acquisition` ({a['settings']['mc_samples']} QMC samples, pruned baseline, "
            "outcome constraints and feasibility inside). Model and tensors moved with "
            "`.to(device)`.",
            "",
            "Evaluation on N raw points (q = 1):",
            "",
            "| device | N | batch | seconds | points/s | speed-up CUDA/CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in a["evaluations"]:
            out.append(
                f"| {r['device']} | {r['points']:,} | {r['batch']} | {r['seconds']:.3f} | "
                f"{_num(r['points_per_second'])} | {r.get('speedup', '–')} |"
            )
        out += [f"\n* {s}" for s in a["skipped"]]
        out += [
            "",
            a["suggest_note"],
            "",
            "| device | q | s per suggest-equivalent | repeats | speed-up CUDA/CPU |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for r in a["suggest"]:
            out.append(
                f"| {r['device']} | {r['q']} | {r['seconds']:.2f} | {r['repeats']} | "
                f"{r.get('speedup', '–')} |"
            )
        if a["errors"]:
            out += ["", *[f"* error on {k}: `{v}`" for k, v in a["errors"].items()]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write ``gpu_benchmark.{json,md}``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~30 s on a CPU)")
    parser.add_argument(
        "--device",
        choices=("all", "cpu", "cuda"),
        default="all",
        help="devices to measure (default: all available; cuda without CUDA: the CPU)",
    )
    parser.add_argument(
        "--only", choices=("ensemble", "acquisition"), help="run one part of the benchmark"
    )
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=FULL.cpu_threads,
        help="torch CPU threads while measuring (0: torch's own setting; default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    plan = replace(QUICK if args.quick else FULL, cpu_threads=args.cpu_threads)
    parts = (args.only,) if args.only else ("ensemble", "acquisition")
    results = {
        "command": " ".join(
            ["python experiments/bench_gpu.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        **run_benchmark(plan, args.device, parts=parts),
    }
    write_json(results, args.out / f"{STEM}.json")
    text = report(results)
    write_text(text, args.out / f"{STEM}.md")
    print(text)
    print(f"wrote {args.out / STEM}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
