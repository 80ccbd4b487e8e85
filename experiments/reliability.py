"""Reliability suite: the campaign stores keep every observation under faults and load.

Measures, on a campaign folder and on PostgreSQL (a throwaway cluster this script starts on
127.0.0.1 and always stops):

1. ``kill -9`` at random moments during ``poreml campaign observe`` and ``suggest`` (real
   subprocesses of the console script; a seeded random delay spread over the command's measured
   duration), each followed by the user's retry (the same command, run to completion) and a
   ``campaign status --json`` check. At the end the export is compared with everything sent:
   observations lost, duplicated or changed; pending candidates that no user ever received
   (a killed ``suggest`` that committed but did not hand out its file), and whether the CLI
   offers a way to cancel them.
2. PostgreSQL concurrency: 4 processes ``observe`` 25 distinct rows each into one campaign at
   once; 4 concurrent ``suggest`` hand out distinct ids and designs.
3. PostgreSQL stopped in the middle of a campaign (``pg_ctl stop -m fast``): commands fail with a
   clear message, non-zero and within a bound; after a restart they work and nothing is lost.
4. ``poreml serve`` (the shipped champion) on loopback: 32 concurrent async clients posting
   single-candidate ``POST /v1/predict`` (errors, rps, p50/p99), then schemathesis-generated
   requests against the running server (responses >= 500 must be 0).

Everything runs on 127.0.0.1, is bounded in time and counts, and every process the script
starts is stopped in ``finally`` blocks. Results: ``experiments/results/reliability.md`` and
``.json`` (with the command and date).

Usage::

    python experiments/reliability.py            # 100 kills per command and store, 60 s load
    python experiments/reliability.py --short    # 5 kills per command and store, 10 s load
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poreml.api.local import local_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
CONFIG = ROOT / "experiments" / "campaign_td_vs_buffering.toml"
CHAMPION = ROOT / "models" / "champion"
HOST = "127.0.0.1"
PG_PORT = 55434
PG_DB = "poreml_campaigns"
ROWS_PER_OBSERVE = 2
"""Distinct rows in each observe file of the kill cycles."""
SUGGEST_BATCH = 2
"""Candidates per ``suggest`` in the kill cycles."""
COMMAND_TIMEOUT = 300.0
"""No CLI command the script runs may take longer (seconds); a longer one is a failure."""
OUTAGE_BOUND = 60.0
"""A command against a stopped database must give up within this many seconds."""
MEASURED = (
    "tap_density_g_cm3",
    "ssa_m2_g",
    "specific_capacity_mah_g",
    "ice_pct",
    "retention_pct",
    "expansion_pct",
)
"""Measured columns compared between what was sent and what was exported."""


# -- processes ------------------------------------------------------------------------------
def poreml_script() -> str:
    """The ``poreml`` console script next to this interpreter (else the one on PATH)."""
    local = Path(sys.executable).with_name("poreml")
    if local.is_file():
        return str(local)
    found = shutil.which("poreml")
    if found is None:
        raise SystemExit("the poreml console script is not installed (pip install -e .)")
    return found


def child_env(home: Path) -> dict[str, str]:
    """Environment of every poreml subprocess: own POREML_HOME, one BLAS thread, no storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POREML_")}
    env.update(POREML_HOME=str(home), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("PYTHONPATH", str(ROOT))
    return env


@dataclass
class Cli:
    """Runs ``poreml`` commands for one store (folder or database) with a bounded timeout."""

    env: dict[str, str]
    storage: str | None
    script: str = field(default_factory=poreml_script)

    def argv(self, command: str, target: str, *args: str) -> list[str]:
        argv = [self.script, "campaign", command, target, *args]
        if command not in ("status", "export"):
            argv.append("--no-tracking")
        if self.storage:
            argv += ["--storage", self.storage]
        return argv

    def run(
        self, command: str, target: str, *args: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, target, *args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, command: str, target: str, *args: str) -> str:
        """Run a command that must succeed; its stdout."""
        done = self.run(command, target, *args)
        if done.returncode != 0:
            raise RuntimeError(
                f"poreml campaign {command} {target} {' '.join(args)} exited "
                f"{done.returncode}: {done.stderr.strip() or done.stdout.strip()}"
            )
        return done.stdout

    def popen(self, command: str, target: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, target, *args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def status(self, target: str) -> dict[str, Any]:
        return json.loads(self.ok("status", target, "--json"))

    def export(self, target: str, out: Path) -> pd.DataFrame:
        self.ok("export", target, "--out", str(out))
        return pd.read_csv(out)


def stop(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` if it still runs and reap it."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=30)


def wait_all(procs: list[subprocess.Popen[str]]) -> list[int | None]:
    """Exit codes of processes started together (each bounded); every one is stopped after."""
    codes: list[int | None] = []
    try:
        for proc in procs:
            proc.wait(timeout=COMMAND_TIMEOUT)
            codes.append(proc.returncode)
    finally:
        for proc in procs:
            stop(proc)
    return codes


def measure(env: dict[str, str], infile: Path, out: Path, seed: int) -> pd.DataFrame:
    """``poreml lab measure`` (noisy, seeded): the virtual lab's results for ``infile``."""
    subprocess.run(
        [poreml_script(), "lab", "measure", str(infile), "--out", str(out), "--seed", str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=True,
    )
    return pd.read_csv(out)


def campaign_config(folder: Path) -> Path:
    """The shipped two-objective config with a long space-filling phase (cheap ``suggest``)."""
    text = CONFIG.read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():
        if line.startswith("initial_points"):
            line = "initial_points = 100000"
        elif line.startswith("batch_size"):
            line = f"batch_size = {SUGGEST_BATCH}"
        lines.append(line)
    path = folder / "campaign.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- PostgreSQL -----------------------------------------------------------------------------
def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: /usr/lib/postgresql/*/bin first, then PATH."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} was not found (apt install postgresql)")
    return found


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:``port`` (trust auth, socket in its folder).

    initdb refuses to run as root, so as root the server runs as the ``postgres`` user.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="poreml-reliability-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{PG_DB}"

    def _run(self, *argv: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self.as_postgres else list(argv)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)

    def init(self) -> None:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, self.port)) == 0:
                raise RuntimeError(f"port {self.port} is taken; give --pg-port")
        self._run(pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        self._run(pg_bin("createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", PG_DB)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -h {HOST}"
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
            "start",
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# -- 1. kill -9 and retry -------------------------------------------------------------------
def ids_of(path: Path) -> list[str]:
    """Candidate ids in a CSV (empty when the file is missing)."""
    if not path.is_file():
        return []
    return pd.read_csv(path)["candidate_id"].astype(str).tolist()


def stray_temp_files(*folders: Path) -> list[str]:
    """Temporary files an interrupted atomic write left behind."""
    return sorted(str(p) for folder in folders for p in folder.rglob(".*.tmp"))


def kill_and_wait(proc: subprocess.Popen[str], delay: float) -> bool:
    """Sleep ``delay`` s, then SIGKILL ``proc`` if it still runs; whether it was killed."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(min(0.01, max(deadline - time.monotonic(), 0)))
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    stop(proc)
    return killed


def timed(cli: Cli, command: str, target: str, *args: str) -> float:
    started = time.perf_counter()
    cli.ok(command, target, *args)
    return time.perf_counter() - started


def kill_cycles(cli: Cli, target: str, work: Path, n_kills: int, seed: int) -> dict[str, Any]:
    """``n_kills`` killed ``observe`` and ``n_kills`` killed ``suggest``, each retried."""
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    cli.ok("init", target, "--config", str(campaign_config(work)), "--fast")

    # observe files of distinct rows: a virtual-lab measurement of pending candidates
    pool = work / "pool.csv"
    cli.ok("suggest", target, "--batch", str((n_kills + 1) * ROWS_PER_OBSERVE), "--out", str(pool))
    measured = measure(cli.env, pool, work / "measured.csv", seed)
    files = []
    for k in range(n_kills + 1):
        part = measured.iloc[k * ROWS_PER_OBSERVE : (k + 1) * ROWS_PER_OBSERVE]
        path = work / f"results-{k:03d}.csv"
        part.to_csv(path, index=False)
        files.append(path)
    received: list[str] = ids_of(pool)

    t_observe = timed(cli, "observe", target, str(files[0]))
    timing_out = work / "suggest-timing.csv"
    t_suggest = timed(cli, "suggest", target, "--out", str(timing_out))
    received += ids_of(timing_out)

    status_failures: list[str] = []
    retry_failures: list[str] = []
    observe_rows = []
    n_obs = cli.status(target)["n_observations"]
    for k, path in enumerate(files[1:], start=1):
        delay = rng.uniform(0.0, t_observe)
        killed = kill_and_wait(cli.popen("observe", target, str(path)), delay)
        after = cli.run("status", target, "--json")
        n_after = n_obs
        if after.returncode != 0:
            status_failures.append(f"observe kill {k}: {after.stderr.strip()}")
        else:
            n_after = json.loads(after.stdout)["n_observations"]
            if n_after not in (n_obs, n_obs + ROWS_PER_OBSERVE):
                status_failures.append(f"observe kill {k}: {n_obs} -> {n_after} observations")
        retry = cli.run("observe", target, str(path))
        if retry.returncode != 0:
            retry_failures.append(f"observe retry {k}: {retry.stderr.strip()}")
        observe_rows.append(
            {
                "delay_s": round(delay, 3),
                "killed": killed,
                "committed_before_kill": n_after > n_obs,
                "retry": retry.stdout.strip().split(": ", 1)[-1][:70],
            }
        )
        n_obs = n_after if retry.returncode != 0 else n_obs + ROWS_PER_OBSERVE

    suggest_rows = []
    orphans_seen: list[str] = []
    for k in range(1, n_kills + 1):
        out = work / f"suggest-{k:03d}.csv"
        before = set(cli.status(target)["pending_ids"])
        delay = rng.uniform(0.0, t_suggest)
        killed = kill_and_wait(cli.popen("suggest", target, "--out", str(out)), delay)
        got = ids_of(out)  # what the user holds after the kill
        received += got
        after = cli.run("status", target, "--json")
        committed: list[str] = []
        if after.returncode != 0:
            status_failures.append(f"suggest kill {k}: {after.stderr.strip()}")
        else:
            committed = sorted(set(json.loads(after.stdout)["pending_ids"]) - before)
        orphaned = sorted(set(committed) - set(got))
        orphans_seen += orphaned
        retry = cli.run("suggest", target, "--out", str(out))
        if retry.returncode != 0:
            retry_failures.append(f"suggest retry {k}: {retry.stderr.strip()}")
        received += ids_of(out)
        suggest_rows.append(
            {
                "delay_s": round(delay, 3),
                "killed": killed,
                "committed": len(committed),
                "file_written": bool(got),
                "orphaned": len(orphaned),
            }
        )

    # the verdict: export against everything sent
    sent = pd.concat([pd.read_csv(p) for p in files], ignore_index=True)
    exported = cli.export(target, work / "export.csv")
    sent_ids = set(sent["candidate_id"].astype(str))
    exp_ids = exported["candidate_id"].astype(str)
    merged = sent.merge(exported, on="candidate_id", suffixes=("_sent", "_stored"))
    changed = 0
    for col in MEASURED:
        a, b = merged[f"{col}_sent"].to_numpy(float), merged[f"{col}_stored"].to_numpy(float)
        changed += int((~(np.isclose(a, b, rtol=1e-9, equal_nan=True))).sum())
    final = cli.status(target)
    pending = set(final["pending_ids"])
    never_received = sorted(pending - set(received))
    handed_out_twice = len(received) - len(set(received))
    cancelled_ok = True
    if never_received:  # the way out for candidates nobody holds: withdraw them
        cli.ok("cancel", target, *never_received, "--reason", "never received (killed suggest)")
        after_cancel = cli.status(target)
        cancelled_ok = not set(never_received) & set(after_cancel["pending_ids"]) and set(
            never_received
        ) <= set(after_cancel["cancelled_ids"])
    return {
        "unwritable_out": unwritable_out(cli, target),
        "command_seconds": {"observe": round(t_observe, 2), "suggest": round(t_suggest, 2)},
        "observe_kills": len(observe_rows),
        "observe_killed_mid_run": sum(r["killed"] for r in observe_rows),
        "observe_committed_before_kill": sum(r["committed_before_kill"] for r in observe_rows),
        "suggest_kills": len(suggest_rows),
        "suggest_killed_mid_run": sum(r["killed"] for r in suggest_rows),
        "suggest_committed_before_kill": sum(r["committed"] > 0 for r in suggest_rows),
        "rows_sent": len(sent),
        "observations_stored": int(exp_ids.isin(sent_ids).sum()),
        "lost": len(sent_ids - set(exp_ids)),
        "duplicated": int(exp_ids.duplicated().sum()),
        "values_changed": changed,
        "unexpected_observations": int((~exp_ids.isin(sent_ids)).sum()),
        "status_failures": status_failures,
        "retry_failures": retry_failures,
        "ids_handed_out_twice": handed_out_twice,
        "pending_at_end": len(pending),
        "pending_never_received": len(never_received),
        "pending_never_received_ids": never_received[:20],
        "never_received_cancelled": cancelled_ok,
        "orphans_seen_after_kills": len(orphans_seen),
        "stray_temp_files": stray_temp_files(work)
        + (stray_temp_files(Path(target)) if cli.storage is None else []),
        "observe_cycles": observe_rows,
        "suggest_cycles": suggest_rows,
    }


def unwritable_out(cli: Cli, target: str) -> dict[str, Any]:
    """``suggest --out`` to a path that cannot be written: exit code, message, pending added.

    The deterministic form of a ``suggest`` that dies between its commit and its file.
    """
    before = set(cli.status(target)["pending_ids"])
    done = cli.run("suggest", target, "--out", "/proc/poreml-unwritable/candidates.csv")
    added = sorted(set(cli.status(target)["pending_ids"]) - before)
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return {
        "exit_code": done.returncode,
        "traceback": "Traceback (most recent call last)" in done.stderr,
        "last_line": lines[-1][:300] if lines else "",
        "pending_added": added,
    }


def cancel_command() -> dict[str, Any]:
    """Whether ``poreml campaign --help`` lists a command to cancel / expire pending ones."""
    done = subprocess.run(
        [poreml_script(), "campaign", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    words = ("cancel", "expire", "discard", "withdraw", "abandon", "reject")
    commands = re.findall(r"^│ ([a-z][a-z-]*) ", done.stdout, flags=re.MULTILINE)
    hits = [w for w in words if w in done.stdout.lower()]
    return {"exists": bool(hits), "matched_words": hits, "commands": commands}


# -- 2. concurrency on PostgreSQL -----------------------------------------------------------
def concurrency(cli: Cli, target: str, work: Path, seed: int) -> dict[str, Any]:
    """4 concurrent observes of 25 distinct rows, then 4 concurrent suggests."""
    work.mkdir(parents=True, exist_ok=True)
    cli.ok("init", target, "--config", str(campaign_config(work)), "--fast")
    pool = work / "pool.csv"
    cli.ok("suggest", target, "--batch", "100", "--out", str(pool))
    measured = measure(cli.env, pool, work / "measured.csv", seed)
    files = []
    for k in range(4):
        path = work / f"robot-{k}.csv"
        measured.iloc[k * 25 : (k + 1) * 25].to_csv(path, index=False)
        files.append(path)
    procs = [cli.popen("observe", target, str(p)) for p in files]
    codes = wait_all(procs)
    exported = cli.export(target, work / "export.csv")
    ids = exported["candidate_id"].astype(str)
    sent = set(measured["candidate_id"].astype(str))

    outs = [work / f"suggest-{k}.csv" for k in range(4)]
    procs = [cli.popen("suggest", target, "--batch", "2", "--out", str(o)) for o in outs]
    s_codes = wait_all(procs)
    frames = [pd.read_csv(o) for o in outs if o.is_file()]
    handed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    design_cols = [c for c in handed.columns if c != "candidate_id" and not c.startswith("pred")]
    handed_ids = handed["candidate_id"].astype(str) if len(handed) else pd.Series(dtype=str)
    return {
        "observe_exit_codes": codes,
        "observations_stored": int(ids.isin(sent).sum()),
        "distinct_stored": int(ids[ids.isin(sent)].nunique()),
        "lost": len(sent - set(ids)),
        "suggest_exit_codes": s_codes,
        "candidates_handed_out": len(handed),
        "distinct_ids": int(handed_ids.nunique()),
        "distinct_designs": int(handed[design_cols].round(9).drop_duplicates().shape[0])
        if len(handed)
        else 0,
        "ids_reused_from_earlier": int(handed_ids.isin(sent).sum()),
        "rounds": cli.status(target)["n_rounds"],
    }


# -- 3. PostgreSQL restarted ----------------------------------------------------------------
def outage(cli: Cli, pg: Postgres, target: str, work: Path, seed: int) -> dict[str, Any]:
    """Stop the server mid-campaign: commands fail clearly and fast; after a restart they work."""
    before = cli.export(target, work / "before.csv")
    batch = work / "outage-batch.csv"
    cli.ok("suggest", target, "--batch", "4", "--out", str(batch))
    results = work / "outage-results.csv"
    measure(cli.env, batch, results, seed)
    pg.stop("fast")
    attempts = {}
    try:
        for name, args in (
            ("status", ("status", target, "--json")),
            ("observe", ("observe", target, str(results))),
            ("suggest", ("suggest", target, "--out", str(work / "outage-suggest.csv"))),
        ):
            started = time.perf_counter()
            try:
                done = cli.run(*args, timeout=OUTAGE_BOUND)
                code: int | None = done.returncode
                message = (done.stderr.strip() or done.stdout.strip()).splitlines()
            except subprocess.TimeoutExpired:
                code, message = None, [f"no answer within {OUTAGE_BOUND:g} s"]
            attempts[name] = {
                "exit_code": code,
                "seconds": round(time.perf_counter() - started, 2),
                "message": " ".join(line.strip() for line in message)[:600],
            }
    finally:
        pg.start()
    again = cli.run("observe", target, str(results))
    after = cli.export(target, work / "after.csv")
    expected = set(before["candidate_id"].astype(str)) | set(
        pd.read_csv(results)["candidate_id"].astype(str)
    )
    got = after["candidate_id"].astype(str)
    return {
        "bound_s": OUTAGE_BOUND,
        "while_stopped": attempts,
        "after_restart_exit_code": again.returncode,
        "after_restart_output": again.stdout.strip()[:300],
        "observations_before": len(before),
        "observations_after": len(after),
        "lost": len(expected - set(got)),
        "duplicated": int(got.duplicated().sum()),
    }


# -- 4. API under load ----------------------------------------------------------------------
@contextlib.contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[str]:
    """``poreml serve --model-dir models/champion`` on a free loopback port; its base URL."""
    args = ["--model-dir", str(CHAMPION), "--log-level", "warning", "--no-access-log"]
    with local_server(args, env=env, log=log, command=[poreml_script()]) as server:
        yield server.url


def load(url: str, duration: float, workers: int, cap: int, seed: int) -> dict[str, Any]:
    """``workers`` async clients posting single-candidate predicts until ``duration`` or ``cap``."""
    import httpx

    from poreml.design.search_space import SearchSpace

    rows = SearchSpace.contract_box().sample(256, seed=seed).to_dict("records")
    bodies = [
        json.dumps({"candidates": [{"candidate_id": f"c{i}", **r}]}) for i, r in enumerate(rows)
    ]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    sent = 0

    async def worker(client: httpx.AsyncClient, end: float) -> None:
        nonlocal sent
        while time.monotonic() < end and sent < cap:
            body = bodies[sent % len(bodies)]
            sent += 1
            started = time.perf_counter()
            try:
                resp = await client.post(
                    "/v1/predict", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as err:
                errors.append(type(err).__name__)
                continue
            latencies.append(time.perf_counter() - started)
            statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1

    async def main() -> float:
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
            started = time.monotonic()
            end = started + duration
            await asyncio.gather(*(worker(client, end) for _ in range(workers)))
            return time.monotonic() - started

    elapsed = asyncio.run(main())
    lat = np.array(latencies) * 1000.0
    ok = statuses.get("200", 0)
    return {
        "duration_s": round(elapsed, 2),
        "workers": workers,
        "request_cap": cap,
        "requests": sent,
        "ok": ok,
        "non_200": sum(v for k, v in statuses.items() if k != "200"),
        "transport_errors": len(errors),
        "statuses": statuses,
        "rps": round(ok / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
    }


def fuzz(url: str, cases: int, time_cap: float, seed: int) -> dict[str, Any]:
    """schemathesis-generated requests (valid and invalid) against the running server."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as hseed

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    combos = []
    for result in schema.get_all_operations():
        op = result.ok()
        combos.append((op, schemathesis.GenerationMode.POSITIVE))
        if op.method.upper() == "POST":
            combos.append((op, schemathesis.GenerationMode.NEGATIVE))
    counts: dict[str, int] = {}
    server_errors: list[dict[str, Any]] = []
    transport: list[str] = []
    total = 0
    end = time.monotonic() + time_cap
    rounds = 0
    current = {"label": ""}
    while total < cases and time.monotonic() < end:
        before = total
        for op, mode in combos:
            remaining = cases - total
            if remaining <= 0 or time.monotonic() >= end:
                break
            per = max(1, math.ceil(remaining / len(combos)))
            current["label"] = f"{op.method.upper()} {op.path} {mode.value}"

            @hseed(seed + rounds)
            @settings(
                max_examples=per,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=op.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                nonlocal total
                if total >= cases or time.monotonic() >= end:
                    return
                total += 1
                label = current["label"]
                counts[label] = counts.get(label, 0) + 1
                try:
                    resp = case.call(base_url=url, timeout=30)
                except Exception as err:  # a transport failure is a finding
                    transport.append(f"{label}: {type(err).__name__}")
                    return
                if resp.status_code >= 500:
                    server_errors.append(
                        {"operation": label, "status": resp.status_code, "body": resp.text[:300]}
                    )

            check()
        rounds += 1
        if total == before:
            break
    return {
        "target_cases": cases,
        "cases": total,
        "time_cap_s": time_cap,
        "per_operation": counts,
        "responses_5xx": len(server_errors),
        "examples_5xx": server_errors[:5],
        "transport_errors": len(transport),
        "transport_examples": transport[:5],
    }


# -- report ---------------------------------------------------------------------------------
def verdicts(res: dict[str, Any]) -> list[tuple[str, bool]]:
    """(check, passed) for every promise the suite measures."""
    out = []
    for store, k in res.get("kills", {}).items():
        out += [
            (f"{store}: 0 observations lost after kills", k["lost"] == 0),
            (f"{store}: 0 observations duplicated", k["duplicated"] == 0),
            (f"{store}: 0 stored values changed", k["values_changed"] == 0),
            (f"{store}: state loads after every kill", not k["status_failures"]),
            (f"{store}: every retry succeeds", not k["retry_failures"]),
            (f"{store}: no candidate id handed out twice", k["ids_handed_out_twice"] == 0),
            (f"{store}: no stray temporary files", not k["stray_temp_files"]),
            (
                f"{store}: pending candidates nobody received are withdrawn by `campaign cancel`",
                k.get("never_received_cancelled", True),
            ),
        ]
    if c := res.get("concurrency"):
        out += [
            ("postgresql: 4 x 25 concurrent observes -> 100 stored", c["distinct_stored"] == 100
             and c["observations_stored"] == 100 and set(c["observe_exit_codes"]) == {0}),
            ("postgresql: 4 concurrent suggests -> distinct ids and designs",
             c["distinct_ids"] == c["candidates_handed_out"] == c["distinct_designs"] == 8
             and c["ids_reused_from_earlier"] == 0),
        ]  # fmt: skip
    if o := res.get("outage"):
        stopped = o["while_stopped"].values()
        out += [
            ("postgresql stopped: commands exit non-zero within the bound",
             all(a["exit_code"] not in (None, 0) for a in stopped)),
            ("postgresql restarted: the command works again, nothing lost",
             o["after_restart_exit_code"] == 0 and o["lost"] == 0 and o["duplicated"] == 0),
        ]  # fmt: skip
    if a := res.get("api"):
        out += [
            (
                "API load: 0 errors",
                a["load"]["non_200"] == 0 and a["load"]["transport_errors"] == 0,
            ),
            ("API fuzz: 0 responses >= 500", a["fuzz"]["responses_5xx"] == 0),
            (
                f"API fuzz: all {a['fuzz']['target_cases']} cases asked were run",
                a["fuzz"]["cases"] >= a["fuzz"]["target_cases"],
            ),
        ]
    return out


def write_report(res: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Reliability: observations kept under kills, concurrency, outages and load",
        "",
        *(
            [
                f"Run {i}: `{r['command']}` — {r['date']}; {r['machine']}; {r['seconds']:.0f} s; "
                f"sections: {', '.join(r['sections'])}.  "
                for i, r in enumerate(res["runs"], start=1)
            ]
            if res.get("runs")
            else [
                f"Command: `{res['command']}`  ",
                f"Date: {res['date']}; {res['machine']}; total {res['seconds']:.0f} s.",
            ]
        ),
        "",
        "## Verdicts",
        "",
        "| check | result |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in verdicts(res)]
    if kills := res.get("kills"):
        lines += [
            "",
            "## 1. kill -9 at random moments, then the user's retry",
            "",
            "Each kill: the command is started, SIGKILLed after a seeded random delay drawn "
            "uniformly over its measured duration (a kill after the command ended counts as "
            "'finished first'), `campaign status --json` must load, then the same command is "
            "re-run to completion. Observe files hold "
            f"{ROWS_PER_OBSERVE} distinct virtual-lab rows of pending candidates; suggest asks "
            f"for {SUGGEST_BATCH} space-filling candidates with `--out`.",
            "",
            "| | " + " | ".join(kills) + " |",
            "| --- | " + " | ".join("---" for _ in kills) + " |",
        ]
        rows = [
            ("observe / suggest duration (s)",
             lambda k: f"{k['command_seconds']['observe']} / {k['command_seconds']['suggest']}"),
            ("observe kills (killed mid-run)",
             lambda k: f"{k['observe_kills']} ({k['observe_killed_mid_run']})"),
            ("killed observes that had committed (retry: nothing new)",
             lambda k: sum(r["committed_before_kill"] for r in k["observe_cycles"])),
            ("suggest kills (killed mid-run)",
             lambda k: f"{k['suggest_kills']} ({k['suggest_killed_mid_run']})"),
            ("killed suggests that had committed", lambda k: k["suggest_committed_before_kill"]),
            ("rows sent / stored", lambda k: f"{k['rows_sent']} / {k['observations_stored']}"),
            ("lost / duplicated / changed",
             lambda k: f"{k['lost']} / {k['duplicated']} / {k['values_changed']}"),
            ("status failures after a kill", lambda k: len(k["status_failures"])),
            ("retry failures", lambda k: len(k["retry_failures"])),
            ("candidate ids handed out twice", lambda k: k["ids_handed_out_twice"]),
            ("pending at the end", lambda k: k["pending_at_end"]),
            ("pending never received by the user", lambda k: k["pending_never_received"]),
            ("... withdrawn by `campaign cancel` afterwards",
             lambda k: "yes" if k.get("never_received_cancelled", True) else "NO"),
            ("stray temporary files", lambda k: len(k["stray_temp_files"])),
        ]  # fmt: skip
        for name, fn in rows:
            lines.append(f"| {name} | " + " | ".join(str(fn(k)) for k in kills.values()) + " |")
        cancel = res["cancel_command"]
        lines += [
            "",
            "**Pending candidates a user never received.** A `suggest` killed after its "
            "transaction committed but before its CSV was written leaves candidates pending "
            "that nobody holds; the retry proposes new ones. "
            + (
                "`poreml campaign cancel IDS --reason ...` withdraws them (kept in the "
                "campaign as cancelled, out of `n_pending` and of the proposals' pending set); "
                "the suite cancels every candidate nobody received and checks the status."
                if cancel["exists"]
                else "`poreml campaign` offers no way to cancel or expire a pending candidate "
                f"(its commands: {', '.join(cancel['commands'])}): such candidates stay pending "
                "for good (they count in `n_pending`, in `pending_ids`, and in the "
                "model-based proposals' pending set). Observing them is the only way out, and "
                "the user does not have their designs except through `status --json`'s ids."
            ),
        ]
        lines.append("")
        for store, k in kills.items():
            u = k.get("unwritable_out")
            if u:
                lines.append(
                    f"- {store}: `suggest --out /proc/poreml-unwritable/candidates.csv` (the "
                    f"deterministic form of a suggest that dies between its commit and its "
                    f"file) exits {u['exit_code']}"
                    + (" with a Python traceback" if u["traceback"] else "")
                    + f" (`{u['last_line']}`) and "
                    + (
                        f"leaves {len(u['pending_added'])} candidates pending that the user "
                        f"never received ({', '.join(u['pending_added'])})."
                        if u["pending_added"]
                        else "records nothing (the output is checked before the transaction)."
                    )
                )
    if c := res.get("concurrency"):
        lines += [
            "",
            "## 2. Concurrency on PostgreSQL",
            "",
            f"- 4 processes `observe` 25 distinct rows each at once: exit codes "
            f"{c['observe_exit_codes']}, {c['observations_stored']} stored "
            f"({c['distinct_stored']} distinct), {c['lost']} lost.",
            f"- 4 concurrent `suggest --batch 2`: exit codes {c['suggest_exit_codes']}, "
            f"{c['candidates_handed_out']} candidates, {c['distinct_ids']} distinct ids, "
            f"{c['distinct_designs']} distinct designs, {c['ids_reused_from_earlier']} ids "
            f"reused; {c['rounds']} rounds recorded.",
        ]
    if o := res.get("outage"):
        lines += [
            "",
            "## 3. PostgreSQL stopped in the middle of a campaign",
            "",
            f"`pg_ctl stop -m fast`, then each command (bound {o['bound_s']:g} s):",
            "",
            "| command | exit code | seconds | message |",
            "| --- | --- | --- | --- |",
        ]
        for name, a in o["while_stopped"].items():
            msg = a["message"].replace("|", "\\|")
            lines.append(f"| {name} | {a['exit_code']} | {a['seconds']} | {msg} |")
        lines += [
            "",
            f"After `pg_ctl start`: observe exit code {o['after_restart_exit_code']} "
            f"({o['after_restart_output']}); observations {o['observations_before']} -> "
            f"{o['observations_after']}, {o['lost']} lost, {o['duplicated']} duplicated.",
        ]
    if a := res.get("api"):
        ld, fz = a["load"], a["fuzz"]
        lines += [
            "",
            "## 4. API under load (loopback, shipped champion)",
            "",
            f"- {ld['workers']} async clients, single-candidate `POST /v1/predict` for "
            f"{ld['duration_s']} s (cap {ld['request_cap']} requests): {ld['requests']} sent, "
            f"{ld['ok']} answered 200, {ld['non_200']} other statuses, "
            f"{ld['transport_errors']} transport errors; {ld['rps']} requests/s, p50 "
            f"{ld['p50_ms']} ms, p99 {ld['p99_ms']} ms.",
            f"- schemathesis ({fz['cases']} generated cases of {fz['target_cases']} asked, "
            f"valid and invalid, against the running server): {fz['responses_5xx']} responses "
            f">= 500, {fz['transport_errors']} transport errors. Per operation: "
            + ", ".join(f"{k}: {v}" for k, v in fz["per_operation"].items())
            + ".",
        ]
    (RESULTS / "reliability.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


SECTIONS = ("kills", "concurrency", "outage", "api")
"""The measured parts of a results JSON, each from one run."""


def merged(earlier: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """``now`` with every section it did not measure taken from ``earlier`` (one report).

    The result lists both runs under ``runs`` (command, date, machine, seconds, sections).
    """
    out = dict(now)
    runs = earlier.get("runs") or [
        {k: earlier[k] for k in ("command", "date", "machine", "seconds")}
        | {"sections": [k for k in SECTIONS if earlier.get(k)]}
    ]
    taken = [k for k in SECTIONS if now.get(k)]
    for key in SECTIONS:
        if not now.get(key) and earlier.get(key):
            out[key] = earlier[key]
    runs = [r | {"sections": [k for k in r["sections"] if k not in taken]} for r in runs]
    out["runs"] = [r for r in runs if r["sections"]] + [
        {k: now[k] for k in ("command", "date", "machine", "seconds")} | {"sections": taken}
    ]
    out["seconds"] = round(sum(r["seconds"] for r in out["runs"]), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="5 kills, 10 s load, 500 cases")
    parser.add_argument("--kills", type=int, help="kills per command and store (default 100)")
    parser.add_argument("--duration", type=float, help="API load seconds (default 60)")
    parser.add_argument("--cases", type=int, help="schemathesis cases (default 10000)")
    parser.add_argument("--stores", default="folder,postgresql", help="folder,postgresql")
    parser.add_argument("--skip-api", action="store_true", help="no API load / fuzzing")
    parser.add_argument(
        "--fuzz-time-cap", type=float, default=3600.0, help="most seconds of fuzzing"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        help="results JSON of an earlier run: the sections this run does not measure are "
        "taken from it (e.g. --stores none with the API part redone)",
    )
    parser.add_argument("--pg-port", type=int, default=PG_PORT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kills = args.kills or (5 if args.short else 100)
    duration = args.duration or (10.0 if args.short else 60.0)
    cases = args.cases or (500 if args.short else 10_000)
    stores = [s.strip() for s in args.stores.split(",") if s.strip() not in ("", "none")]

    started = time.perf_counter()
    res: dict[str, Any] = {
        "command": " ".join(
            ["python experiments/reliability.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}",
        "settings": {"kills": kills, "duration_s": duration, "cases": cases, "seed": args.seed},
    }
    work = Path(tempfile.mkdtemp(prefix="poreml-reliability-"))
    env = child_env(work / "home")
    pg: Postgres | None = None
    try:
        res["cancel_command"] = cancel_command()
        res["kills"] = {}
        if "folder" in stores:
            print(f"[{time.perf_counter() - started:6.0f} s] folder store: {kills} kills each")
            cli = Cli(env, None)
            res["kills"]["folder"] = kill_cycles(
                cli, str(work / "campaign"), work / "folder", kills, args.seed
            )
        if "postgresql" in stores:
            pg = Postgres(args.pg_port)
            pg.init()
            cli = Cli(env, pg.url)
            print(f"[{time.perf_counter() - started:6.0f} s] postgresql: {kills} kills each")
            res["kills"]["postgresql"] = kill_cycles(
                cli, "reliability-kills", work / "pg", kills, args.seed
            )
            print(f"[{time.perf_counter() - started:6.0f} s] postgresql: concurrency")
            res["concurrency"] = concurrency(cli, "reliability-team", work / "team", args.seed)
            print(f"[{time.perf_counter() - started:6.0f} s] postgresql: outage")
            res["outage"] = outage(cli, pg, "reliability-team", work / "team", args.seed + 1)
        if not args.skip_api:
            print(f"[{time.perf_counter() - started:6.0f} s] API: load {duration:g} s")
            with served(env, work / "serve.log") as url:
                load_res = load(url, duration, 32, 200_000, args.seed)
                print(f"[{time.perf_counter() - started:6.0f} s] API: {cases} fuzz cases")
                fuzz_res = fuzz(url, cases, args.fuzz_time_cap, args.seed)
            res["api"] = {"load": load_res, "fuzz": fuzz_res}
    finally:
        if pg is not None:
            pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    res["seconds"] = round(time.perf_counter() - started, 1)
    if args.merge is not None:
        res = merged(json.loads(args.merge.read_text(encoding="utf-8")), res)
    res["verdicts"] = {name: ok for name, ok in verdicts(res)}
    write_report(res)
    failed = [name for name, ok in verdicts(res) if not ok]
    print(f"{len(res['verdicts']) - len(failed)}/{len(res['verdicts'])} checks pass; "
          f"{RESULTS / 'reliability.md'}")  # fmt: skip
    for name in failed:
        print(f"FAIL: {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
