"""Where one model-based ``suggest`` spends its time: a cProfile of the contract campaign.

The campaign of ``experiments/campaign_td_vs_buffering.toml`` (6 continuous inputs + the route,
2 objectives, 3 outcome constraints, the nonlinear parameter constraint, the feasibility model)
with its default acquisition settings is given ``n`` virtual-lab observations (space-filling
designs of the baseline scenario, noisy, seed-fixed), then asked for a batch of 4 under
``cProfile``. Reported per ``n``: wall time, the campaign's own split (model fit / acquisition
optimisation, as recorded in the round), and the functions with the largest cumulative and own
time. The observations are Sobol designs rather than a campaign's own choices, so the model
fits differ from a real round's; the cost structure is the same.

Usage::

    python experiments/profile_suggest.py                  # n = 24, 40, 56
    python experiments/profile_suggest.py --observations 40

Writes ``experiments/results/suggest_profile.md`` and ``.json`` (command, date, machine, load).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
CONFIG = ROOT / "experiments" / "campaign_td_vs_buffering.toml"
BATCH = 4
TOP = 25


def profile_one(n_obs: int, seed: int) -> dict[str, Any]:
    """Profile one ``ask(4)`` after ``n_obs`` observations."""
    import torch

    from poreml.design.config import CampaignConfig
    from poreml.optimize.campaign import Campaign
    from poreml.virtual_lab import VirtualLab

    torch.set_num_threads(1)
    config = dataclasses.replace(CampaignConfig.from_toml(CONFIG), seed=seed, initial_points=n_obs)
    campaign = Campaign(config)
    lab = VirtualLab("baseline")
    campaign.tell(lab.measure(campaign.ask(n_obs), seed=seed))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    batch = campaign.ask(BATCH)
    profiler.disable()
    wall = time.perf_counter() - started
    rounds = campaign.to_dict()["rounds"]
    info = rounds[-1].get("model", {}) if rounds else {}
    return {
        "observations": n_obs,
        "batch": len(batch),
        "strategy": campaign.history.iloc[-1]["strategy"],
        "wall_s": round(wall, 2),
        "fit_s": info.get("fit_seconds"),
        "optimize_s": info.get("optimize_seconds"),
        "cumulative": _top(profiler, "cumulative"),
        "own": _top(profiler, "tottime"),
    }


def time_unprofiled(n_values: list[int], seeds: list[int]) -> dict[str, Any]:
    """Wall seconds of ``ask(4)`` without the profiler, per (seed, n); median and max."""
    import torch

    from poreml.design.config import CampaignConfig
    from poreml.optimize.campaign import Campaign
    from poreml.virtual_lab import VirtualLab

    torch.set_num_threads(1)
    base = CampaignConfig.from_toml(CONFIG)
    lab = VirtualLab("baseline")
    calls = []
    for seed in seeds:
        for n_obs in n_values:
            config = dataclasses.replace(base, seed=seed, initial_points=n_obs)
            campaign = Campaign(config)
            campaign.tell(lab.measure(campaign.ask(n_obs), seed=seed))
            started = time.perf_counter()
            campaign.ask(BATCH)
            calls.append(
                {"seed": seed, "observations": n_obs, "wall_s": time.perf_counter() - started}
            )
    walls = [c["wall_s"] for c in calls]
    return {
        "calls": calls,
        "median_s": round(statistics.median(walls), 2),
        "max_s": round(max(walls), 2),
    }


def _top(profiler: cProfile.Profile, key: str) -> list[dict[str, Any]]:
    stats = pstats.Stats(profiler, stream=io.StringIO())
    stats.sort_stats(key)
    rows = []
    for func in stats.fcn_list[: TOP * 4]:  # type: ignore[attr-defined]
        _, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
        path, line, name = func
        rows.append(
            {
                "function": f"{_short(path)}:{line}({name})",
                "calls": nc,
                "own_s": round(tt, 3),
                "cumulative_s": round(ct, 3),
            }
        )
        if len(rows) == TOP:
            break
    return rows


def _short(path: str) -> str:
    for marker in ("site-packages/", "poreml/"):
        if marker in path:
            return (marker if marker == "poreml/" else "") + path.split(marker, 1)[1]
    return path


def _calls_text(timing: dict[str, Any]) -> str:
    seeds = sorted({c["seed"] for c in timing["calls"]})
    sizes = sorted({c["observations"] for c in timing["calls"]})
    return f"seeds {', '.join(map(str, seeds))}; n = {', '.join(map(str, sizes))}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Profile of one model-based suggest",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; {report['machine']}; load average before "
        f"{report['load_before']} and after {report['load_after']} (shared machine); torch "
        "intra-op threads: 1.",
        "",
        "The contract campaign with default acquisition settings, `n` space-filling "
        "virtual-lab observations, then `ask(4)` under cProfile (profiling adds overhead: the "
        "wall times here are longer than unprofiled ones).",
        "",
        f"Without the profiler ({_calls_text(report['unprofiled'])}): median "
        f"{report['unprofiled']['median_s']} s, max {report['unprofiled']['max_s']} s over "
        f"{len(report['unprofiled']['calls'])} calls of `ask(4)` (targets: median <= 5 s, "
        "max <= 10 s).",
        "",
        "| observations | wall (s, profiled) | model fit (s) | acquisition optimisation (s) |",
        "| --- | --- | --- | --- |",
    ]
    for r in report["runs"]:
        lines.append(f"| {r['observations']} | {r['wall_s']} | {r['fit_s']} | {r['optimize_s']} |")
    for r in report["runs"]:
        for key, title in (("cumulative", "cumulative time"), ("own", "own time")):
            lines += [
                "",
                f"## n = {r['observations']}: top {TOP} by {title}",
                "",
                "| function | calls | own (s) | cumulative (s) |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| `{row['function']}` | {row['calls']} | {row['own_s']} | {row['cumulative_s']} |"
                for row in r[key]
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", default="24,40,56", help="comma list of n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "command": "python experiments/profile_suggest.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "runs": [],
    }
    n_values = [int(v) for v in args.observations.split(",")]
    timing = time_unprofiled(n_values, [args.seed, args.seed + 1])
    report["unprofiled"] = timing
    print(f"unprofiled ask(4): median {timing['median_s']} s, max {timing['max_s']} s")
    for n in n_values:
        run = profile_one(n, args.seed)
        print(f"n={n}: {run['wall_s']} s (fit {run['fit_s']} s, optimise {run['optimize_s']} s)")
        report["runs"].append(run)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "suggest_profile.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "suggest_profile.md").write_text(markdown(report))
    print(f"wrote {args.out / 'suggest_profile.md'}")


if __name__ == "__main__":
    main()
