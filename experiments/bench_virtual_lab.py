"""Throughput of the virtual lab (spec section 10): designs per second on this machine.

Measures, with a warm-up call and the median of several repeats:

* numpy, noise-free (``simulate``): batches of 1e4, 1e5 and 1e6 designs;
* numpy, noisy (``simulate_measurement``): batch noise + physics + measurement noise;
* the DataFrame façade (``VirtualLab.evaluate`` / ``measure``), validation included;
* torch float64 and float32 on the CPU, and on CUDA when a GPU is present.

Writes ``experiments/results/virtual_lab_throughput.json`` and ``.md``. Run it with
``make bench`` or ``.venv/bin/python experiments/bench_virtual_lab.py [--quick]``.
This is a script, not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from poreml.data.io import write_json, write_text
from poreml.data.schema import ROUTES
from poreml.virtual_lab import LabParams, VirtualLab, simulate, simulate_measurement

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_NUMPY = 1e6  # designs/s, spec section 10 (numpy, noise-free, float64)


def uniform_designs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Designs drawn as in spec section 9 (route uniform, d and t_Si log-uniform)."""
    rng = np.random.default_rng(seed)
    return {
        "route": rng.integers(0, 3, n),
        "pore_size_nm": 10 ** rng.uniform(np.log10(0.5), 3.0, n),
        "porosity": rng.uniform(0.0, 0.8, n),
        "closed_pore_fraction": rng.uniform(0.0, 1.0, n),
        "carbon_wt_pct": rng.uniform(2.0, 90.0, n),
        "si_domain_nm": 10 ** rng.uniform(0.0, np.log10(3000.0), n),
        "shell_nm": rng.uniform(0.0, 50.0, n),
        "d50_um": rng.uniform(2.0, 25.0, n),
        "graphitic_fraction": rng.uniform(0.0, 1.0, n),
    }


def timed(fn: Callable[[], object], repeats: int, sync: Callable[[], None] | None = None) -> dict:
    """Warm up once, then time ``repeats`` calls.

    Returns:
        ``median_s`` / ``min_s`` of wall-clock seconds, ``cpu_median_s`` of process CPU
        seconds (all threads), and every wall time.
    """
    fn()
    if sync:
        sync()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if sync:
            sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "median_s": statistics.median(wall),
        "min_s": min(wall),
        "cpu_median_s": statistics.median(cpu),
        "times_s": wall,
    }


def repeats_for(n: int, quick: bool) -> int:
    base = 3 if n >= 1_000_000 else 7 if n >= 100_000 else 21
    return max(2, base // 3) if quick else base


def machine_info() -> dict:
    info: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    try:
        import torch

        info |= {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = None
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15_min"] = [round(v, 2) for v in os.getloadavg()]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run(quick: bool) -> dict:
    load_at_start = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    params = LabParams()
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    rows: list[dict] = []

    def record(path: str, backend: str, n: int, stats: dict) -> None:
        rows.append(
            {
                "path": path,
                "backend": backend,
                "batch": n,
                "designs_per_s": n / stats["median_s"],
                "designs_per_cpu_s": n / stats["cpu_median_s"],
                "median_s": stats["median_s"],
                "min_s": stats["min_s"],
                "repeats": len(stats["times_s"]),
            }
        )
        print(
            f"{path:<30} {backend:<18} n={n:>9,d} {n / stats['median_s']:>12,.0f} designs/s "
            f"(wall) {n / stats['cpu_median_s']:>12,.0f} per CPU-s"
        )

    for n in sizes:
        x = uniform_designs(n)
        reps = repeats_for(n, quick)
        record(
            "simulate (noise-free)", "numpy float64", n, timed(partial(simulate, x, params), reps)
        )
        record(
            "simulate extra=True",
            "numpy float64",
            n,
            timed(partial(simulate, x, params, extra=True), reps),
        )
        rng = np.random.default_rng(0)
        record(
            "simulate_measurement (noisy)",
            "numpy float64",
            n,
            timed(partial(simulate_measurement, x, params, rng=rng), reps),
        )

    lab = VirtualLab()
    for n in (10_000, 100_000):
        x = uniform_designs(n)
        frame = pd.DataFrame(x).assign(route=np.asarray(ROUTES)[x["route"]])
        reps = repeats_for(n, quick)
        record("VirtualLab.evaluate", "DataFrame", n, timed(partial(lab.evaluate, frame), reps))
        record(
            "VirtualLab.measure (noisy)",
            "DataFrame",
            n,
            timed(partial(lab.measure, frame, seed=0), reps),
        )

    import torch

    default_threads = torch.get_num_threads()
    # (device, CPU threads): torch's default thread count, and one thread, which is what a
    # shared or oversubscribed machine effectively gives (OpenMP barriers stall otherwise).
    settings = [("cpu", t) for t in sorted({default_threads, 1}, reverse=True)]
    if torch.cuda.is_available():
        settings.append(("cuda", default_threads))
    for device, threads in settings:
        torch.set_num_threads(threads)
        sync = torch.cuda.synchronize if device == "cuda" else None
        for dtype in (torch.float64, torch.float32):
            for n in sizes:
                x = uniform_designs(n)
                xt = {
                    k: torch.as_tensor(v, device=device)
                    if k == "route"
                    else torch.as_tensor(v, dtype=dtype, device=device)
                    for k, v in x.items()
                }
                reps = repeats_for(n, quick)
                with torch.no_grad():
                    stats = timed(partial(simulate, xt, params), reps, sync)
                name = str(dtype).replace("torch.", "")
                where = f"{device} {threads} thr" if device == "cpu" else device
                record("simulate (noise-free)", f"torch {where} {name}", n, stats)
    torch.set_num_threads(default_threads)
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": load_at_start,
        "machine": machine_info(),
        "target_numpy_noise_free_designs_per_s": TARGET_NUMPY,
        "results": rows,
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Virtual-lab throughput",
        "",
        f"Generated by `experiments/bench_virtual_lab.py` on {report['created']}.",
        "",
        f"* CPU: {m['processor']} ({m['cpu_count']} cores visible), {m['platform']}",
        f"* Python {m['python']}, numpy {m['numpy']}, pandas {m['pandas']}, "
        f"torch {m.get('torch')} ({m.get('torch_threads')} threads), CUDA: {m.get('cuda')}",
        f"* load average (1, 5, 15 min) at the start {report['load_average_at_start']}, "
        f"at the end {m.get('load_average_1_5_15_min')}; on a shared machine compare "
        "'per CPU-s' (process CPU time, all threads) as well as wall-clock throughput",
        "* designs drawn uniformly from the search box (spec §9), baseline parameters; "
        "median of repeats after one warm-up call",
        f"* target (spec §10): ≥ {report['target_numpy_noise_free_designs_per_s']:,.0f} "
        "designs/s for numpy noise-free float64",
        "",
        "| path | backend | batch | designs/s (wall) | designs per CPU-s | median s | repeats |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['path']} | {r['backend']} | {r['batch']:,d} | {r['designs_per_s']:,.0f} "
            f"| {r['designs_per_cpu_s']:,.0f} | {r['median_s']:.4f} | {r['repeats']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches, fewer repeats")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args()
    report = run(args.quick)
    write_json(report, args.out / "virtual_lab_throughput.json")
    write_text(markdown(report), args.out / "virtual_lab_throughput.md")
    print(f"wrote {args.out / 'virtual_lab_throughput.json'} and .md")
    print(json.dumps(report["machine"]))


if __name__ == "__main__":
    main()
