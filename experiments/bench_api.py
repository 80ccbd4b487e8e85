"""Benchmark of the prediction API: latency under load and 100,000-candidate screens.

For each model (the shipped champion, and a cheap ``ridge`` reference that shows what the API
layer itself costs):

1. start ``poreml serve`` (``--workers``, ``--torch-threads``) as a subprocess on a free
   127.0.0.1 port and wait for ``/healthz`` (:func:`poreml.api.local.local_server`);
2. latency under load: ``--clients`` concurrent loopback clients send single-candidate
   ``POST /v1/predict`` for ``--duration`` seconds (at most ``--max-requests``): Locust
   (``experiments/locust_predict.py``, headless, ``pip install locust``) or, with
   ``--load-tool threads``, this script's thread clients; p50, p90, p99, max latency, errors,
   throughput; then one client alone for the per-request latency without queueing;
3. screen ``--screen-n`` candidates (2 objectives, 3 constraints, top_k 100): in process
   (request validation + :func:`poreml.api.service.screen`, in a worker thread as in the
   server; and the served model's prediction of every row alone) and over HTTP (one request,
   timed from sending the body to the parsed answer);
4. where a single-candidate predict spends its time, step by step, in process.

Targets (:data:`TARGETS`): >= 1,000 predicts/s at 32 clients with p99 <= 50 ms and no error;
in process one candidate <= 1 ms and 100,000 <= 1 s; 100,000 over HTTP <= 3 s.
Writes ``experiments/results/api_benchmark.json`` and ``.md``. Every request goes to
127.0.0.1; every phase is bounded in time.

Run::

    .venv/bin/python experiments/bench_api.py            # ~5-15 min, depending on the model
    .venv/bin/python experiments/bench_api.py --duration 5 --screen-n 10000   # quick look
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from poreml.api.local import local_server
from poreml.data.schema import DESIGN_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
HOST = "127.0.0.1"

TARGETS = {
    "rps": 1000.0,
    "p99_ms": 50.0,
    "errors": 0,
    "single_ms": 1.0,
    "screen_100k_in_process_s": 1.0,
    "screen_100k_http_s": 3.0,
}
"""Server: >= 1,000 single-candidate predicts/s at 32 clients with p99 <= 50 ms and no error.
In process: one candidate through the served model in <= 1 ms, 100,000 in <= 1 s; 100,000
through ``POST /v1/screen`` over HTTP in <= 3 s."""

LOCUSTFILE = ROOT / "experiments" / "locust_predict.py"

SCREEN_SETTINGS: dict[str, Any] = {
    "objectives": {
        "tap_density_g_cm3": {"direction": "maximize", "threshold": 0.3},
        "expansion_pct": {"direction": "minimize", "threshold": 150.0},
    },
    "constraints": {
        "ice_pct": ">= 80",
        "retention_pct": ">= 80",
        "specific_capacity_mah_g": ">= 1000",
    },
    "top_k": 100,
}


def candidates(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` space-filling designs over the contract box, as API candidates."""
    from poreml.design.search_space import SearchSpace

    rows = SearchSpace.contract_box().sample(n, seed=seed).to_dict("records")
    return [{"candidate_id": f"b{i}", **row} for i, row in enumerate(rows)]


@contextmanager
def running_server(
    model_dir: Path, max_candidates: int, log: Path, torch_threads: int | None, workers: int
) -> Iterator[int]:
    """``poreml serve`` for ``model_dir`` on a free port; yields the port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POREML_")}
    env.update(
        POREML_MODEL_DIR=str(model_dir),
        POREML_API_MAX_CANDIDATES=str(max_candidates),
        POREML_API_MAX_BODY_BYTES=str(1024 * max_candidates + (1 << 20)),
    )
    args = ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    if torch_threads:
        args += ["--torch-threads", str(torch_threads)]
    with local_server(args, env=env, log=log) as server:
        yield server.port


def load_test_locust(
    port: int, clients: int, duration: float, pool: list[bytes], work: Path, cap: int
) -> dict[str, Any]:
    """Locust (headless, ``clients`` users, no think time) for ``duration`` s or ``cap``
    requests: its aggregated statistics."""
    pool_file = work / "pool.json"
    pool_file.write_text(json.dumps([b.decode() for b in pool]), encoding="utf-8")
    prefix = work / "locust"
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    argv += ["-u", str(clients), "-r", str(clients), "-t", f"{round(duration)}s"]
    argv += ["--host", f"http://{HOST}:{port}", "--csv", str(prefix), "--only-summary"]
    argv += ["--loglevel", "WARNING", "--stop-timeout", "10"]
    env = {**os.environ, "POREML_BENCH_POOL": str(pool_file)}
    env["POREML_BENCH_MAX_REQUESTS"] = str(cap)
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration + 180, check=False
    )
    stats = prefix.with_name(prefix.name + "_stats.csv")
    if not stats.is_file():
        raise RuntimeError(f"locust wrote no statistics (exit {done.returncode}): {done.stderr}")
    import pandas as pd

    row = pd.read_csv(stats).set_index("Name").loc["Aggregated"]
    requests = int(row["Request Count"])
    return {
        "tool": "locust (FastHttpUser)",
        "clients": clients,
        "duration_s": duration,
        "requests": requests,
        "errors": int(row["Failure Count"]),
        "throughput_rps": round(float(row["Requests/s"]), 1),
        "p50_ms": float(row["50%"]),
        "p90_ms": float(row["90%"]),
        "p99_ms": float(row["99%"]),
        "max_ms": round(float(row["Max Response Time"]), 1),
    }


def load_test(port: int, clients: int, duration: float, pool: list[bytes]) -> dict[str, Any]:
    """``clients`` threads posting single-candidate predicts for ``duration`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=max(60.0, duration * 4))
        headers = {"Content-Type": "application/json"}
        i = k
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            body = pool[i % len(pool)]
            i += clients
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body, headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
            latencies[k].append(time.perf_counter() - t0)
            errors[k] += not ok
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    t_start = time.perf_counter()
    stop_at[0] = t_start + duration
    start_gate.wait()
    for thread in threads:
        thread.join(timeout=duration + 120)
    elapsed = time.perf_counter() - t_start
    all_ms = np.array([x for per in latencies for x in per]) * 1e3
    return {
        "tool": "threads (http.client)",
        "clients": clients,
        "duration_s": round(elapsed, 2),
        "requests": int(all_ms.size),
        "errors": int(sum(errors)),
        "throughput_rps": round(all_ms.size / elapsed, 1),
        **_percentiles(all_ms),
    }


def _percentiles(ms: np.ndarray) -> dict[str, float | None]:
    if ms.size == 0:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def in_worker_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` run in a fresh thread, as the server runs model calls (FastAPI's thread pool).

    With torch's default intra-op threads, where the call runs changed the champion GP's speed
    several-fold on the shared 2-CPU machine (10,000-candidate screen: 12.3 s in the main
    thread, 7.0 s in a worker thread, 1.3 s with ``torch.set_num_threads(1)``), so the
    in-process figures are taken the way the server works.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def screen_in_process(model_dir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Request validation plus the service's screen, without HTTP."""
    from poreml.api import service
    from poreml.api.schemas import ScreenRequest
    from poreml.tracking.artifacts import load_folder

    model = service.served_model(load_folder(model_dir))
    n = len(payload["candidates"])
    warm = service.candidates_frame(ScreenRequest.model_validate(payload).candidates[:64], 64)
    model.predict(warm)  # first calls build the model's caches, as in a running server
    t0 = time.perf_counter()
    request = ScreenRequest.model_validate(payload)
    t1 = time.perf_counter()
    frame = service.candidates_frame(request.candidates, max_candidates=n)
    ranked, _ = service.screen(
        model, frame, request.parsed_objectives, request.parsed_constraints, request.top_k
    )
    t2 = time.perf_counter()
    model.predict(frame)  # the model's part alone: the served model's prediction of every row
    t3 = time.perf_counter()
    return {
        "candidates": n,
        "validation_s": round(t1 - t0, 3),
        "predict_rank_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
        "predict_s": round(t3 - t2, 3),
        "front_size_in_top_k": int((ranked["pareto_rank"] == 1).sum()),
    }


def request_breakdown(model_dir: Path, repeats: int = 50) -> dict[str, float]:
    """Mean in-process milliseconds of each step of a single-candidate predict."""
    from poreml.api import service
    from poreml.api.schemas import PredictRequest
    from poreml.tracking.artifacts import load_folder

    model = service.served_model(load_folder(model_dir))
    body = {"candidates": candidates(1, seed=7)}
    request = PredictRequest.model_validate(body)
    frame = service.candidates_frame(request.candidates, 1)
    answered = service.predict(model, frame)  # also warms the model's caches
    steps = {
        "validate_request": lambda: PredictRequest.model_validate(body),
        "build_frame": lambda: service.candidates_frame(request.candidates, 1),
        "model_predict": lambda: model.predict(frame),
        "surrogate_predict_interval": lambda: model.surrogate.predict_interval(
            frame[list(DESIGN_COLUMNS)], level=0.9
        ),
        "surrogate_in_domain": lambda: model.surrogate.in_domain(frame[list(DESIGN_COLUMNS)]),
        "answer_json": lambda: json.dumps({"predictions": service.prediction_records(*answered)}),
    }
    out = {}
    for name, step in steps.items():
        t0 = time.perf_counter()
        for _ in range(repeats):
            step()
        out[name] = round((time.perf_counter() - t0) / repeats * 1e3, 3)
    return out


def screen_over_http(port: int, body: bytes, n: int, timeout: float) -> dict[str, Any]:
    """One ``POST /v1/screen`` with ``n`` candidates; wall time to the parsed answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/v1/screen", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        status = response.status
    except TimeoutError:
        return {"candidates": n, "status": None, "total_s": None, "timed_out_after_s": timeout}
    finally:
        conn.close()
    elapsed = time.perf_counter() - t0
    return {
        "candidates": n,
        "request_mb": round(len(body) / 1e6, 1),
        "status": status,
        "total_s": round(elapsed, 3),
        "returned": len(answer.get("candidates", [])) if status == 200 else 0,
    }


def reference_model(folder: Path) -> Path:
    """A ``ridge`` surrogate on 256 virtual-lab rows: cheap, so the API layer shows."""
    from poreml.data.schema import DESIGN_COLUMNS
    from poreml.surrogates.base import TARGETS
    from poreml.surrogates.evaluation import virtual_lab_data
    from poreml.surrogates.registry import make

    data = virtual_lab_data(256, seed=0)
    model = make("ridge").fit(data[list(DESIGN_COLUMNS)], data[list(TARGETS)])
    return model.save(folder / "ridge")


def bench_model(label: str, model_dir: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Every measurement for one model folder."""
    print(f"[{label}] {model_dir}", flush=True)
    pool = [
        json.dumps({"candidates": [c]}).encode() for c in candidates(args.pool, seed=args.seed + 1)
    ]
    payload = {**SCREEN_SETTINGS, "candidates": candidates(args.screen_n, seed=args.seed)}
    body = json.dumps(payload).encode()
    result: dict[str, Any] = {"model": label, "model_dir": str(model_dir)}
    log = tmp / f"server-{label}.log"
    with running_server(model_dir, args.screen_n, log, args.torch_threads, args.workers) as port:
        load_test(port, 2, 2.0, pool)  # warm-up
        if args.load_tool == "locust":
            result["loaded"] = load_test_locust(
                port, args.clients, args.duration, pool, tmp, args.max_requests
            )
        else:
            result["loaded"] = load_test(port, args.clients, args.duration, pool)
        print(f"  {args.clients} clients: {result['loaded']}", flush=True)
        result["single_client"] = load_test(port, 1, min(args.duration, 10.0), pool)
        print(f"  1 client: {result['single_client']}", flush=True)
        result["screen_http"] = screen_over_http(port, body, args.screen_n, args.screen_timeout)
        print(f"  screen over HTTP: {result['screen_http']}", flush=True)
    result["screen_in_process"] = in_worker_thread(lambda: screen_in_process(model_dir, payload))
    print(f"  screen in process: {result['screen_in_process']}", flush=True)
    result["single_request_ms"] = in_worker_thread(lambda: request_breakdown(model_dir))
    print(f"  single request, in process (ms): {result['single_request_ms']}", flush=True)
    return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown page."""
    lines = [
        "# API benchmark",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']['cpu_count']} CPUs, {report['machine']['platform']}, "
        f"load average before {report['machine']['load_average_1_5_15']} and after "
        f"{report['load_average_after']} (the machine is shared; client and server share it). "
        f"torch intra-op threads: {report['args']['torch_threads'] or 'torch default'} "
        "(server and in process).",
        "",
        f"Targets: >= {TARGETS['rps']:g} single-candidate predicts/s at "
        f"{report['args']['clients']} concurrent clients with p99 <= {TARGETS['p99_ms']:g} ms "
        f"and no error; in process one candidate <= {TARGETS['single_ms']:g} ms and 100,000 "
        f"<= {TARGETS['screen_100k_in_process_s']:g} s; 100,000 through `POST /v1/screen` over "
        f"HTTP <= {TARGETS['screen_100k_http_s']:g} s. Server: `poreml serve --workers "
        f"{report['args']['workers']}`; load: {report['results'][0]['loaded']['tool']}.",
        "",
        "| model | clients | requests | errors | throughput (req/s) | p50 (ms) | p90 (ms) "
        "| p99 (ms) | max (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        for key in ("loaded", "single_client"):
            s = r[key]
            lines.append(
                f"| {r['model']} | {s['clients']} | {s['requests']} | {s['errors']} | "
                f"{s['throughput_rps']} | {s['p50_ms']} | {s['p90_ms']} | {s['p99_ms']} | "
                f"{s['max_ms']} |"
            )
    lines += [
        "",
        "| model | candidates | predicted in process (s) | screen in process (s) | "
        "of which validation (s) | screen over HTTP (s) | HTTP status |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["results"]:
        p, h = r["screen_in_process"], r["screen_http"]
        lines.append(
            f"| {r['model']} | {p['candidates']} | {p['predict_s']} | {p['total_s']} | "
            f"{p['validation_s']} | "
            f"{h['total_s'] if h['total_s'] is not None else 'timed out'} | {h['status']} |"
        )
    steps = list(report["results"][0]["single_request_ms"])
    lines += [
        "",
        "Where a single-candidate predict spends its time, in process (mean ms; "
        "`model_predict` = the served model's one pass: the surrogate's `predict_arrays` on a "
        "frame the request model already validated; the two `surrogate_*` rows time the "
        "surrogate's own entry points, which validate their input again, for comparison):",
        "",
        "| model | " + " | ".join(steps) + " |",
        "| --- | " + " | ".join("---" for _ in steps) + " |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['model']} | " + " | ".join(str(r["single_request_ms"][k]) for k in steps) + " |"
        )
    lines += ["", "## Verdict", ""]
    for r in report["results"]:
        for check, ok in r["meets_targets"].items():
            lines.append(f"- {r['model']}: {check}: {'met' if ok else 'NOT met'}")
    lines.append("")
    return "\n".join(lines)


def verdict(result: dict[str, Any], screen_n: int) -> dict[str, bool]:
    """Which targets one model's numbers meet."""
    loaded = result["loaded"]
    http_s = result["screen_http"]["total_s"]
    scale = 100_000 / screen_n  # linear extrapolation when a smaller screen was run
    in_process = result["screen_in_process"]["predict_s"] * scale
    return {
        f">= {TARGETS['rps']:g} req/s": loaded["throughput_rps"] >= TARGETS["rps"],
        f"p99 <= {TARGETS['p99_ms']:g} ms": loaded["p99_ms"] is not None
        and loaded["p99_ms"] <= TARGETS["p99_ms"],
        "zero errors": loaded["errors"] == 0,
        f"one candidate in process <= {TARGETS['single_ms']:g} ms": result["single_request_ms"][
            "model_predict"
        ]
        <= TARGETS["single_ms"],
        f"100k predicted in process <= {TARGETS['screen_100k_in_process_s']:g} s": in_process
        <= TARGETS["screen_100k_in_process_s"],
        f"100k screened over HTTP <= {TARGETS['screen_100k_http_s']:g} s": result["screen_http"][
            "status"
        ]
        == 200
        and http_s * scale <= TARGETS["screen_100k_http_s"],
    }


def main() -> None:
    """Parse arguments, run the benchmark, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "champion")
    parser.add_argument("--no-reference", action="store_true", help="skip the ridge reference")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--screen-n", type=int, default=100_000)
    parser.add_argument("--screen-timeout", type=float, default=900.0)
    parser.add_argument("--pool", type=int, default=512, help="distinct single candidates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads, server and in process (0: torch's default)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="poreml serve --workers (server processes)"
    )
    parser.add_argument(
        "--load-tool",
        choices=("locust", "threads"),
        default="locust",
        help="locust (pip install locust) or this script's thread clients",
    )
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap of the load run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.load_tool == "locust":
        import importlib.util

        if importlib.util.find_spec("locust") is None:
            parser.error(
                "the load tool Locust is not installed: pip install -e '.[bench]' (or run with "
                "--load-tool threads)"
            )

    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    report: dict[str, Any] = {
        "command": " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": TARGETS,
        "machine": machine(),
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="poreml-bench-") as tmp_name:
        tmp = Path(tmp_name)
        models = [("champion", args.model_dir)]
        if not args.no_reference:
            models.append(("ridge (reference)", reference_model(tmp)))
        for label, folder in models:
            result = bench_model(label, folder, args, tmp)
            result["meets_targets"] = verdict(result, args.screen_n)
            report["results"].append(result)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "api_benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "api_benchmark.md").write_text(markdown(report))
    print(f"wrote {args.out / 'api_benchmark.json'} and .md")


if __name__ == "__main__":
    main()
