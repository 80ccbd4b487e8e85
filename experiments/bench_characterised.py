"""Benchmark: how much do measured characterisation columns improve performance predictions?

(a) Noisy virtual lab. A cascade surrogate (:mod:`poreml.surrogates.cascade`) is trained on
    ``N_TRAIN`` noisy designs (:func:`~poreml.surrogates.evaluation.virtual_lab_data`). The
    held-out set is ``N_TEST`` other designs *made* by the lab: batch noise on the design (spec
    §6.1), the physics on that batch, then measurement noise (§6.2), so their tap density and
    BET area are measured as a lab would measure them. ICE truth is the batch's noise-free
    ICE (what the powder really has), and intervals are scored against its measured ICE
    (what a new measurement shows). Compared: the cascade conditioned on the measured SSA
    and TD, the same cascade design-only, and the plain physics-informed ``gp``. Repeated on
    the baseline lab and randomised instances 1-3 (the surrogates' physics prior stays the
    baseline one, so the instances are the fair test).
(b) Curated dataset ``datasets/porous_sic.csv``, rows with SSA and ICE, leave-one-material-out
    (:func:`~poreml.surrogates.splits.real_data_groups`): the cascade trained on the other
    materials and conditioned on the row's measured SSA (and TD when reported), against the
    mean predictor and a linear fit of ICE on log10 SSA.

Run: ``OMP_NUM_THREADS=1 python experiments/bench_characterised.py`` (``make
bench-characterised``); writes ``experiments/results/characterised.md`` and ``.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from poreml.data.io import read_csv
from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.design.search_space import SearchSpace
from poreml.surrogates import make
from poreml.surrogates.base import TARGETS
from poreml.surrogates.evaluation import virtual_lab_data
from poreml.surrogates.splits import real_data_groups
from poreml.virtual_lab import VirtualLab
from poreml.virtual_lab.noise import add_measurement_noise, perturb_designs

N_TRAIN = 64
N_TEST = 1000
TEST_SEED = 10_000
TASKS: tuple[int | None, ...] = (None, 1, 2, 3)
LEVEL = 0.9
TARGET_MAE_REDUCTION = 0.30
COVERAGE_WINDOW = (0.85, 0.95)
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


def made_and_measured(
    n: int, seed: int, instance_seed: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` designs made and characterised by the lab.

    Returns:
        ``(designs, truth)``: the requested designs with the *measured* tap density, BET area
        and ICE of the batch that came out; and the batch's noise-free outputs.
    """
    designs = SearchSpace.contract_box().sample(n, seed)
    lab = VirtualLab(instance_seed=instance_seed)
    rng = np.random.default_rng(seed)
    arrays = {
        "route": pd.Categorical(designs["route"], categories=ROUTES).codes.astype(np.intp),
        **{c: designs[c].to_numpy(np.float64) for c in CONTINUOUS_DESIGN_COLUMNS},
    }
    batch = perturb_designs(arrays, rng, lab.batch_noise)
    made = pd.DataFrame({c: batch[c] for c in CONTINUOUS_DESIGN_COLUMNS})
    made.insert(0, "route", designs["route"].to_numpy())
    truth = lab.evaluate(made, extra=True)
    clean = {c: truth[c].to_numpy(np.float64) for c in MEASURED_COLUMNS}
    measured, _ = add_measurement_noise(
        clean, truth["free_expansion_pct"].to_numpy(np.float64), rng, lab.measurement_noise
    )
    out = designs[list(DESIGN_COLUMNS)].copy()
    for c in ("tap_density_g_cm3", "ssa_m2_g", "ice_pct"):
        out[c] = measured[c]
    return out, truth


def score(table: pd.DataFrame, truth: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """ICE MAE against the truth, 90 % interval coverage of the measured ICE, mean width."""
    mean = table["ice_pct_mean"].to_numpy()
    lower, upper = table["ice_pct_lower"].to_numpy(), table["ice_pct_upper"].to_numpy()
    return {
        "mae": float(np.mean(np.abs(mean - truth))),
        "coverage_90": float(np.mean((measured >= lower) & (measured <= upper))),
        "mean_width_90": float(np.mean(upper - lower)),
    }


def oracle_linear_link(
    test: pd.DataFrame, truth: pd.DataFrame, instance_seed: int | None
) -> dict[str, float]:
    """What a linear link from measured SSA and TD to ICE can achieve at best.

    The lab's own noise-free outputs at the requested designs stand in for a perfect stage 1
    and stage 2; the batch's ICE deviation (logit) is regressed on the measured log SSA and
    log TD deviations over the test rows themselves (in-sample: an upper bound).

    Returns:
        ``r2`` of that regression and the ICE MAE reduction it gives over the perfect
        design-only prediction.
    """
    design = VirtualLab(instance_seed=instance_seed).evaluate(test[list(DESIGN_COLUMNS)])

    def logit(v: pd.Series) -> np.ndarray:
        p = v.to_numpy(np.float64).clip(0.1, 99.9) / 100.0
        return np.log(p / (1.0 - p))

    dev = logit(truth["ice_pct"]) - logit(design["ice_pct"])
    features = np.column_stack(
        [
            np.log(test[c].to_numpy(np.float64).clip(1e-2))
            - np.log(design[c].to_numpy(np.float64).clip(1e-2))
            for c in ("ssa_m2_g", "tap_density_g_cm3")
        ]
        + [np.ones(len(test))]
    )
    coef, *_ = np.linalg.lstsq(features, dev, rcond=None)
    fitted = logit(design["ice_pct"]) + features @ coef
    corrected = 100.0 / (1.0 + np.exp(-fitted))
    ice = truth["ice_pct"].to_numpy(np.float64)
    mae_design = float(np.mean(np.abs(design["ice_pct"].to_numpy(np.float64) - ice)))
    mae_linked = float(np.mean(np.abs(corrected - ice)))
    residual = dev - features @ coef
    return {
        "r2": float(1.0 - residual.var() / dev.var()),
        "mae_design": mae_design,
        "mae_linked": mae_linked,
        "mae_reduction": 1.0 - mae_linked / mae_design,
    }


def virtual_lab_task(instance_seed: int | None) -> dict[str, object]:
    """Part (a) for one lab instance."""
    train = virtual_lab_data(N_TRAIN, instance_seed=instance_seed, seed=0)
    X, y = train[list(DESIGN_COLUMNS)], train[list(TARGETS)]
    test, truth = made_and_measured(N_TEST, TEST_SEED, instance_seed)
    ice_true = truth["ice_pct"].to_numpy()
    ice_measured = test["ice_pct"].to_numpy()
    t0 = time.perf_counter()
    cascade = make("cascade", random_state=0).fit(X, y)
    fit_cascade = time.perf_counter() - t0
    gp = make("gp", random_state=0).fit(X, y)
    designs = test[list(DESIGN_COLUMNS)]
    t0 = time.perf_counter()
    conditioned = cascade.predict_table(
        test[[*DESIGN_COLUMNS, "tap_density_g_cm3", "ssa_m2_g"]], level=LEVEL
    )
    seconds_conditioned = time.perf_counter() - t0
    t0 = time.perf_counter()
    design_only = cascade.predict_table(designs, level=LEVEL)
    seconds_design_only = time.perf_counter() - t0
    plain = gp.predict_table(designs, level=LEVEL)
    rows = {
        "cascade, conditioned on measured SSA + TD": score(conditioned, ice_true, ice_measured),
        "cascade, design only": score(design_only, ice_true, ice_measured),
        "gp, design only": score(plain, ice_true, ice_measured),
    }
    best_design_only = rows["cascade, design only"]["mae"]
    reduction = 1.0 - rows["cascade, conditioned on measured SSA + TD"]["mae"] / best_design_only
    return {
        "task": "baseline" if instance_seed is None else f"instance {instance_seed}",
        "models": rows,
        "mae_reduction_vs_design_only": reduction,
        "mae_reduction_vs_gp": 1.0
        - rows["cascade, conditioned on measured SSA + TD"]["mae"] / rows["gp, design only"]["mae"],
        "fit_seconds_cascade": fit_cascade,
        "predict_seconds_conditioned": seconds_conditioned,
        "predict_seconds_design_only": seconds_design_only,
        "conditioned_on": sorted(set(conditioned["conditioned_on"])),
        "oracle_linear_link": oracle_linear_link(test, truth, instance_seed),
    }


def real_data() -> dict[str, object]:
    """Part (b): leave-one-material-out on the curated rows with SSA and ICE."""
    data = read_csv(ROOT / "datasets" / "porous_sic.csv")
    rows = data[data["ssa_m2_g"].notna() & data["ice_pct"].notna()].reset_index(drop=True)
    groups = real_data_groups(rows)
    design = [c for c in DESIGN_COLUMNS if c in rows.columns]
    measured_inputs = [c for c in ("tap_density_g_cm3", "ssa_m2_g") if c in rows.columns]
    ice = rows["ice_pct"].to_numpy(np.float64)
    log_ssa = np.log10(rows["ssa_m2_g"].to_numpy(np.float64).clip(min=1e-2))
    pred = {"mean predictor": np.empty(len(rows)), "linear ICE ~ log10 SSA": np.empty(len(rows))}
    pred["cascade, conditioned on measured SSA (+ TD)"] = np.empty(len(rows))
    for g in pd.unique(groups):
        test = groups == g
        train = ~test
        pred["mean predictor"][test] = ice[train].mean()
        slope, intercept = np.polyfit(log_ssa[train], ice[train], 1)
        pred["linear ICE ~ log10 SSA"][test] = intercept + slope * log_ssa[test]
        model = make("cascade", targets=["ice_pct"], random_state=0)
        model.fit(rows.loc[train, design], rows.loc[train, ["ice_pct", *measured_inputs]])
        table = model.predict_table(rows.loc[test, [*design, *measured_inputs]])
        pred["cascade, conditioned on measured SSA (+ TD)"][test] = table["ice_pct_mean"]
    out = {name: {"mae": float(np.mean(np.abs(p - ice)))} for name, p in pred.items()}
    return {
        "rows": len(rows),
        "materials": len(pd.unique(groups)),
        "models": out,
    }


def markdown(result: dict[str, object]) -> str:
    """The results page."""
    lines = [
        "# Characterised candidates: conditioning on measured SSA and tap density",
        "",
        f"Command: `{result['command']}`; date {result['date']}; "
        f"Python {result['python']} on {result['machine']}.",
        "",
        "## (a) Noisy virtual lab",
        "",
        f"{N_TRAIN} noisy training designs; {N_TEST} held-out designs made by the lab (batch "
        "noise), their tap density and BET area measured with noise; ICE truth = the batch's "
        "noise-free ICE, 90 % intervals scored against its measured ICE. Targets: MAE at least "
        f"{100 * TARGET_MAE_REDUCTION:.0f} % below the design-only cascade; coverage in "
        f"{COVERAGE_WINDOW[0]:.2f}–{COVERAGE_WINDOW[1]:.2f}.",
        "",
        "| task | model | ICE MAE | 90 % coverage | mean width |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for task in result["virtual_lab"]:  # type: ignore[union-attr]
        for name, s in task["models"].items():
            lines.append(
                f"| {task['task']} | {name} | {s['mae']:.3f} | {s['coverage_90']:.3f} | "
                f"{s['mean_width_90']:.2f} |"
            )
    lines += [
        "",
        "| task | MAE reduction vs design-only cascade | vs plain gp | target met | "
        "predict 1000 (conditioned / design-only) |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for task in result["virtual_lab"]:  # type: ignore[union-attr]
        cov = task["models"]["cascade, conditioned on measured SSA + TD"]["coverage_90"]
        ok = task["mae_reduction_vs_design_only"] >= TARGET_MAE_REDUCTION and (
            COVERAGE_WINDOW[0] <= cov <= COVERAGE_WINDOW[1]
        )
        lines.append(
            f"| {task['task']} | {100 * task['mae_reduction_vs_design_only']:.1f} % | "
            f"{100 * task['mae_reduction_vs_gp']:.1f} % | {'yes' if ok else 'no'} | "
            f"{task['predict_seconds_conditioned']:.2f} s / "
            f"{task['predict_seconds_design_only']:.2f} s |"
        )
    lines += [
        "",
        "Best case for a linear link (the lab's own physics as perfect stages, the link fitted "
        "on the test rows themselves): share of the batch's ICE deviation (logit) that the "
        "measured SSA and TD deviations explain, and the ICE MAE reduction it gives.",
        "",
        "| task | R² of the link | MAE, perfect design-only | MAE, with the link | reduction |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for task in result["virtual_lab"]:  # type: ignore[union-attr]
        o = task["oracle_linear_link"]
        lines.append(
            f"| {task['task']} | {o['r2']:.2f} | {o['mae_design']:.3f} | "
            f"{o['mae_linked']:.3f} | {100 * o['mae_reduction']:.1f} % |"
        )
    real = result["real_data"]
    lines += [
        "",
        "## (b) Curated dataset, leave one material out",
        "",
        f"{real['rows']} rows with SSA and ICE from {real['materials']} materials "  # type: ignore[index]
        "(`datasets/porous_sic.csv`).",
        "",
        "| model | ICE MAE |",
        "| --- | ---: |",
    ]
    for name, s in real["models"].items():  # type: ignore[index]
        lines.append(f"| {name} | {s['mae']:.2f} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    """Run both parts and write the results."""
    started = time.perf_counter()
    result: dict[str, object] = {
        "command": "OMP_NUM_THREADS=1 python experiments/bench_characterised.py",
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    result["virtual_lab"] = [virtual_lab_task(s) for s in TASKS]
    result["real_data"] = real_data()
    result["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "characterised.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "characterised.md").write_text(markdown(result))
    sys.stdout.write(markdown(result))


if __name__ == "__main__":
    main()
