"""HTTP errors of the API: the only place where poreml errors become HTTP statuses.

Every error answer is JSON ``{"detail": ...}``. Validation problems (422) list one entry per bad
field, each naming the field (``candidates[3].porosity``), the value found and what is allowed.
No request ever gets a 500:

* bad input is a 422 (or 413 when it is too large, 401 without the token);
* a failure of the served model is a 503 (:class:`ModelUnavailableError`): the request was
  fine, the service could not answer it;
* anything unforeseen is logged with its traceback under an error id and answered 503 with
  that id: blaming the client with a 4xx would be dishonest.
"""

from __future__ import annotations

import difflib
import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS
from poreml.exceptions import PoremlError

logger = logging.getLogger("poreml.api")

__all__ = [
    "InvalidRequestError",
    "ModelUnavailableError",
    "TooManyCandidatesError",
    "install_error_handlers",
]

_MAX_VALUE_CHARS = 200
_FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


class InvalidRequestError(PoremlError, ValueError):
    """A request is well-formed JSON of the right shape but cannot be served (answered 422).

    Attributes:
        field: dotted path of the offending field, e.g. ``objectives.porosity``.
        value: the offending value.
    """

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(f"{field}: got {_show(value)}, expected {expected}")


class TooManyCandidatesError(PoremlError, ValueError):
    """A request carries more candidates than the server accepts (answered 413)."""

    def __init__(self, n: int, limit: int, setting: str = "POREML_API_MAX_CANDIDATES") -> None:
        self.n = n
        self.limit = limit
        super().__init__(
            f"candidates: got {n} candidates, expected at most {limit} per request "
            f"(server setting {setting}); split the batch"
        )


class ModelUnavailableError(PoremlError, RuntimeError):
    """The served model failed or returned unusable numbers (answered 503)."""


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_describe(err) for err in exc.errors()]}, status_code=422)

    async def on_invalid_request(request: Request, exc: InvalidRequestError) -> JSONResponse:
        entry = {
            "loc": ["body", *exc.field.replace("[", ".").replace("]", "").split(".")],
            "field": exc.field,
            "value": _json_safe(exc.value),
            "msg": str(exc),
            "type": "invalid_request",
        }
        return JSONResponse({"detail": [entry]}, status_code=422)

    async def on_too_many(request: Request, exc: TooManyCandidatesError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    async def on_model_failure(request: Request, exc: ModelUnavailableError) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        logger.error(
            "model failure [%s] on %s %s: %s",
            error_id,
            request.method,
            request.url.path,
            exc,
            exc_info=exc,
        )
        return JSONResponse(
            {"detail": f"the model could not answer this request (error id {error_id}): {exc}"},
            status_code=503,
        )

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        status = exc.status_code
        if status == 400 and detail == _FASTAPI_BODY_PARSE_ERROR:
            # FastAPI answers 400 when the JSON parser fails with something other than a
            # syntax error (bytes that are not UTF-8, integers with thousands of digits).
            status = 422
            detail = [
                {
                    "loc": ["body"],
                    "field": "body",
                    "value": None,
                    "msg": "request body: could not be read as UTF-8 JSON (invalid bytes or a "
                    "number too long to parse); send a JSON object",
                    "type": "json_invalid",
                }
            ]
        return JSONResponse(
            {"detail": detail}, status_code=status, headers=getattr(exc, "headers", None)
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        logger.error(
            "unexpected error [%s] on %s %s",
            error_id,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return JSONResponse(
            {
                "detail": f"the server could not handle this request (error id {error_id}); "
                "it has been logged. Try again, and report the id if it persists."
            },
            status_code=503,
        )

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(InvalidRequestError, on_invalid_request)
    app.add_exception_handler(TooManyCandidatesError, on_too_many)
    app.add_exception_handler(ModelUnavailableError, on_model_failure)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _describe(err: dict[str, Any]) -> dict[str, Any]:
    """One pydantic/FastAPI error as ``{"loc", "field", "value", "msg", "type"}``.

    ``msg`` names the field and the value, and for design columns the allowed range with unit.
    """
    loc = tuple(err.get("loc", ()))
    path = loc[1:] if loc and loc[0] == "body" else loc
    kind = str(err.get("type", "value_error"))
    value = err.get("input")
    if path and path[-1] == "[key]":  # a bad key of a mapping: the key is the value
        path = path[:-1]
    field = _field(path)
    name = str(path[-1]) if path else ""
    if kind == "json_invalid":
        position = path[-1] if path else "?"
        reason = (err.get("ctx") or {}).get("error", "invalid JSON")
        msg = f"request body: not valid JSON at character {position} ({reason})"
        return {"loc": list(loc), "field": "body", "value": None, "msg": msg, "type": kind}
    if kind == "extra_forbidden":
        known = (*DESIGN_COLUMNS, "candidate_id") if "candidates" in path else ()
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = f"{field}: unknown field {name!r}{hint}"
        if known:
            msg += "; a candidate takes: " + ", ".join(known)
        value = name
    elif kind == "missing":
        msg = f"{field}: required field is missing"
    elif kind == "value_error":
        # Raised by our own validators, whose messages already name the field and the value.
        msg = str((err.get("ctx") or {}).get("error", err.get("msg", "invalid value")))
        value = None
    else:
        expected = str(err.get("msg", "invalid value"))
        col = COLUMNS.get(name)
        if col is not None and col.dtype == "float" and "candidates" in path:
            expected = f"{expected}; allowed: {col.describe_range()}"
        msg = f"{field}: got {_show(value)}: {expected}"
    return {"loc": list(loc), "field": field, "value": _json_safe(value), "msg": msg, "type": kind}


def _field(path: Sequence[object]) -> str:
    """``("candidates", 3, "porosity")`` -> ``"candidates[3].porosity"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _json_safe(value: object) -> object:
    """``value`` as something JSON can carry: non-finite floats, huge ints, objects become text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value.bit_length() <= 63:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= _MAX_VALUE_CHARS:
        return value
    return _show(value)


def _show(value: object) -> str:
    """Short ``repr`` of a value; NaN and infinities spelled as in JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and value.bit_length() > 63:
        return f"<an integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."
