"""Property-based fuzzing of the OpenAPI schema (schemathesis): no input yields a server error.

Schemathesis generates valid and invalid requests for every operation from the app's own
OpenAPI document (``/openapi.json``) and sends them in process. The number of examples is
bounded so the module runs in about a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = pytest.mark.slow

OPERATIONS = [
    ("/healthz", "GET"),
    ("/v1/model", "GET"),
    ("/v1/predict", "POST"),
    ("/v1/screen", "POST"),
    ("/v1/explain", "POST"),
]
WITH_BODY = [op for op in OPERATIONS if op[1] == "POST"]
"""Operations with input to make invalid (the GETs take none)."""

MAX_EXAMPLES = 40
"""Examples per operation and generation mode."""

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    """The app's OpenAPI schema, loaded through the app itself."""
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    documented = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [(*op, schemathesis.GenerationMode.POSITIVE) for op in OPERATIONS]
    + [(*op, schemathesis.GenerationMode.NEGATIVE) for op in WITH_BODY],
)
def test_no_generated_request_yields_a_server_error(
    api_schema: Any, path: str, method: str, mode: schemathesis.GenerationMode
) -> None:
    strategy = api_schema[path][method].as_strategy(generation_mode=mode)

    @FUZZ_SETTINGS
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        # not_a_server_error fails on any 5xx, 503 included: generated input must never break
        # the model or the server.
        case.call_and_validate(checks=[not_a_server_error])

    check()


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_valid_requests_get_answers_that_conform_to_the_documented_schema(
    api_schema: Any, path: str, method: str
) -> None:
    strategy = api_schema[path][method].as_strategy(
        generation_mode=schemathesis.GenerationMode.POSITIVE
    )

    @FUZZ_SETTINGS
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        # Some valid-looking requests are rightly refused with 422 for reasons JSON Schema
        # cannot express (candidate ids unique within a request; objective thresholds and
        # constraint bounds inside the plausible range of their column), so acceptance of
        # every schema-valid request is not checked; everything else is.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()
