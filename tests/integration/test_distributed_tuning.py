"""Two `poreml train --tune` workers share one Optuna study in PostgreSQL."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.integration

TRIALS_PER_WORKER = 2


def test_two_workers_fill_one_study(services, poreml, workdir: Path) -> None:
    study_name = f"it-tune-{uuid.uuid4().hex[:8]}"
    commands = {
        worker: [
            "train",
            "--model",
            "gp",
            "--data",
            "virtual-lab",
            "--n",
            "32",
            "--n-test",
            "10",
            "--tune",
            "--n-trials",
            str(TRIALS_PER_WORKER),
            "--study",
            study_name,
            "--tune-seed",
            str(tune_seed),
            "--no-register",
            "--out",
            worker,
        ]
        for worker, tune_seed in (("worker-a", 1), ("worker-b", 2))
    }
    # both start before either finishes: they run at the same time on one study
    procs = {worker: poreml.start(args, workdir) for worker, args in commands.items()}
    for worker, proc in procs.items():
        poreml.finish(proc, commands[worker])

    study = optuna.load_study(study_name=study_name, storage=services.optuna_storage)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == 2 * TRIALS_PER_WORKER  # every trial of both workers
    assert sorted(numbers) == list(range(2 * TRIALS_PER_WORKER))  # no number twice
    # no settings scored twice: a trial that drew settings already scored (the GP's space is
    # six combinations) takes the earlier trial's score and says so
    scored = [t for t in study.trials if "duplicate_of" not in t.user_attrs]
    settings = [tuple(sorted(t.params.items())) for t in scored]
    assert len(set(settings)) == len(settings)
    for t in study.trials:
        if "duplicate_of" in t.user_attrs:
            first = study.trials[t.user_attrs["duplicate_of"]]
            assert first.params == t.params and first.value == t.value

    reported = {
        worker: json.loads((workdir / worker / "metadata.json").read_text())["tuning"]
        for worker in commands
    }
    assert {r["study"] for r in reported.values()} == {study_name}
    best = [r["best_value"] for r in reported.values()]
    assert math.isclose(best[0], best[1], rel_tol=0, abs_tol=1e-12), reported
    assert math.isclose(best[0], study.best_value, rel_tol=0, abs_tol=1e-12)
