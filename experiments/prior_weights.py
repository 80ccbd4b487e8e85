"""Which prior mean predicts a campaign's lab best: shared physics weights, per-route ones, none.

For each campaign-benchmark task (:mod:`benchmark_tasks`) and stored ``poreml`` run, the first
``--n`` designs the campaign chose are measured again with the run's noise seeds (the lab is
deterministic given them), and three physics-informed GPs (``poreml.surrogates.gp``) are fitted
on them, as the campaign fits its outcome model (plain targets in contract units):

* ``shared``: the physics prior mean with one learned offset and slope per outcome (the
  campaign's default);
* ``per-route``: the same plus a per-route correction (``prior_by_route=True``);
* ``constant``: no physics (``prior="constant"``).

Each is scored on the task's reference-front designs (the designs a campaign is looking for)
against their noise-free values: mean absolute error per outcome divided by the spread of the
truth over those designs, then the median over runs.

Usage::

    python experiments/prior_weights.py                  # seeds 0 and 1, n = 24
    python experiments/prior_weights.py --seeds 0,1,2 --n 32

Writes ``experiments/results/prior_weights.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_campaign  # noqa: E402  (beside this script: its runs, noise seeds and fronts)
import benchmark_tasks  # noqa: E402

RESULTS = bench_campaign.RESULTS
RUNS = bench_campaign.RUNS / "full"
BATCH = bench_campaign.BATCH
VARIANTS: dict[str, dict[str, Any]] = {
    "shared": {},
    "per-route": {"prior_by_route": True},
    "constant": {"prior": "constant"},
}
OUTCOMES = (
    "tap_density_g_cm3",
    "expansion_pct",
    "ice_pct",
    "retention_pct",
    "specific_capacity_mah_g",
)


def _remeasure(task: str, run: dict[str, Any], n: int) -> pd.DataFrame:
    """The run's first ``n`` designs as the benchmark measured them (same noise seeds)."""
    from poreml.data.schema import DESIGN_COLUMNS

    lab = benchmark_tasks.task_lab(task)
    designs = pd.DataFrame(run["designs"])[list(DESIGN_COLUMNS)].iloc[:n]
    parts = [
        lab.measure(
            designs.iloc[i : i + BATCH].reset_index(drop=True),
            seed=bench_campaign.noise_seed(run["seed"], k),
        )
        for k, i in enumerate(range(0, n, BATCH), start=1)
    ]
    return pd.concat(parts, ignore_index=True)


def _front(task: str) -> pd.DataFrame:
    from poreml.data.schema import ROUTES

    ref = bench_campaign.reference(task, bench_campaign.REFERENCE_LOG2)
    front = pd.DataFrame(ref["front_designs"])
    front["route"] = [ROUTES[int(r)] for r in front["route"]]
    return front


def score(task: str, seeds: list[int], n: int) -> dict[str, dict[str, float]]:
    """Median normalised MAE per variant and outcome (module doc)."""
    from poreml.data.schema import DESIGN_COLUMNS
    from poreml.surrogates.registry import make
    from poreml.surrogates.scaling import PLAIN_TARGET_TRANSFORMS

    front = _front(task)[list(DESIGN_COLUMNS)]
    truth = benchmark_tasks.task_lab(task).evaluate(front)
    per: dict[str, dict[str, list[float]]] = {v: {o: [] for o in OUTCOMES} for v in VARIANTS}
    for seed in seeds:
        path = RUNS / task / "poreml" / f"seed{seed}.json"
        if not path.is_file():
            continue
        train = _remeasure(task, json.loads(path.read_text()), n)
        for name, kwargs in VARIANTS.items():
            model = make(
                "gp",
                targets=list(OUTCOMES),
                target_transforms=dict(PLAIN_TARGET_TRANSFORMS),
                random_state=0,
                **kwargs,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(train[list(DESIGN_COLUMNS)], train[list(OUTCOMES)])
                pred = model.predict(front)
            for o in OUTCOMES:
                err = np.abs(pred[o].to_numpy() - truth[o].to_numpy()).mean()
                per[name][o].append(float(err / max(truth[o].std(), 1e-12)))
    return {name: {o: statistics.median(v) for o, v in by.items() if v} for name, by in per.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--n", type=int, default=24, help="designs the models are fitted on")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = list(benchmark_tasks.TASKS)
    results = {task: score(task, seeds, args.n) for task in tasks}
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python experiments/prior_weights.py " + " ".join(argv or sys.argv[1:]),
        "seeds": seeds,
        "n": args.n,
        "cpus": os.cpu_count(),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "prior_weights.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Prior mean of the campaign's GP: shared physics weights, per route, none",
        "",
        f"Command: `{report['command'].strip()}`; {report['date']}. Each campaign-benchmark "
        f"task, the first {args.n} designs of the stored `poreml` runs (seeds "
        f"{', '.join(map(str, seeds))}), measured again with the runs' noise seeds; GPs fitted "
        "as the campaign fits them, scored on the task's reference-front designs: MAE / spread "
        "of the truth there (lower is better), median over runs, and the mean over outcomes.",
        "",
        "| task | outcome mean: shared | per-route | constant | "
        + " | ".join(f"{o} shared / per-route" for o in OUTCOMES)
        + " |",
        "|---|---|---|---|" + "---|" * len(OUTCOMES),
    ]
    for task, res in results.items():
        if not res["shared"]:
            continue
        means = {v: statistics.mean(res[v].values()) for v in VARIANTS}
        cells = [f"{res['shared'][o]:.3f} / {res['per-route'][o]:.3f}" for o in OUTCOMES]
        lines.append(
            f"| {task} | {means['shared']:.3f} | {means['per-route']:.3f} | "
            f"{means['constant']:.3f} | " + " | ".join(cells) + " |"
        )
    lines.append("")
    (RESULTS / "prior_weights.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
