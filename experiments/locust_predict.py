"""Locust user of the API benchmark: single-candidate ``POST /v1/predict`` as fast as answered.

Run by ``experiments/bench_api.py`` (``locust -f experiments/locust_predict.py --headless``).
Request bodies come from the JSON list in ``POREML_BENCH_POOL`` (one body per candidate, taken
in turn); ``POREML_BENCH_MAX_REQUESTS`` bounds the requests of the whole run (the run also
ends at ``--run-time``); ``POREML_API_TOKEN`` is sent as the bearer token when set. Any status
but 200 counts as a failure.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, events, task

POOL: list[str] = json.loads(Path(os.environ["POREML_BENCH_POOL"]).read_text(encoding="utf-8"))
MAX_REQUESTS = int(os.environ.get("POREML_BENCH_MAX_REQUESTS", "1000000"))
HEADERS = {"Content-Type": "application/json"}
if os.environ.get("POREML_API_TOKEN"):
    HEADERS["Authorization"] = f"Bearer {os.environ['POREML_API_TOKEN']}"

_sent = itertools.count()


class Predictor(FastHttpUser):
    """One client with one keep-alive connection, no think time."""

    wait_time = constant(0)

    @task
    def predict(self) -> None:
        k = next(_sent)
        if k >= MAX_REQUESTS:
            self.environment.runner.quit()
            return
        body = POOL[k % len(POOL)]
        with self.client.post(
            "/v1/predict", data=body, headers=HEADERS, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")


@events.init.add_listener
def _quiet(environment, **_kwargs) -> None:
    environment.stop_timeout = 10
