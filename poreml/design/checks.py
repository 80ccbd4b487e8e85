"""Small checks shared by the design objects: each failure is a ``ConfigError`` that names the key.

Messages follow one shape: ``"<key>: expected <what>, got <found>. Fix: <how>."``
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

from poreml.exceptions import ConfigError

_MISSING = object()


def config_error(where: str, expected: str, got: object, fix: str) -> ConfigError:
    """Build the standard ``ConfigError`` for the key ``where``."""
    return ConfigError(f"{where}: expected {expected}, got {_show(got)}. Fix: {fix}.")


def _show(value: object) -> str:
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return value[1:-1]  # a description rather than a value, e.g. "<nothing>"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def did_you_mean(word: str, options: Collection[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest option, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(
    data: object,
    where: str,
    *,
    allowed: Collection[str],
    required: Collection[str] = (),
    what: str = "a table",
) -> Mapping[str, Any]:
    """Check that ``data`` is a mapping with only ``allowed`` keys and every ``required`` key.

    Args:
        data: the value found at ``where``.
        where: dotted key of ``data`` (e.g. ``"parameters.porosity"``); ``""`` for the root.
        allowed: keys that may appear.
        required: keys that must appear.
        what: what ``data`` should be, in words.

    Returns:
        ``data`` itself.

    Raises:
        ConfigError: ``data`` is not a mapping, has an unknown key or lacks a required one.
    """
    label = where or "the top level"
    if not isinstance(data, Mapping):
        raise config_error(
            label, what, f"<a {type(data).__name__}: {_show(data)}>", f"make it {what}"
        )
    for key in data:
        if key not in allowed:
            full = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"{full}: unknown key {key!r}{did_you_mean(str(key), allowed)}; "
                f"{label} accepts: {', '.join(allowed)}. Fix: rename or remove it."
            )
    for key in required:
        if key not in data:
            fix = f"add {key} = ... under [{where}]" if where else f"add a [{key}] table"
            raise ConfigError(f"{label}: missing key {key!r}; it is required. Fix: {fix}.")
    return data


def check_type_field(data: Mapping[str, Any], expected: str, where: str) -> None:
    """Check the ``"type"`` field of a serialised object."""
    found = data.get("type", _MISSING)
    if found != expected:
        got = "<no 'type' field>" if found is _MISSING else found
        raise config_error(
            f"{where}.type" if where else "type",
            f"{expected!r}",
            got,
            f"pass a dict produced by {expected}.to_dict()",
        )


def as_float(value: object, where: str, fix: str = "write a finite number") -> float:
    """A finite float from an int or float (bools and strings rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise config_error(where, "a number", value, fix)
    out = float(value)
    if not math.isfinite(out):
        raise config_error(where, "a finite number", value, fix)
    return out


def as_int(value: object, where: str, *, minimum: int, maximum: int | None = None) -> int:
    """An int within ``[minimum, maximum]`` (bools, floats and strings rejected)."""
    rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise config_error(where, f"an integer {rng}", value, "write a whole number, no quotes")
    if value < minimum or (maximum is not None and value > maximum):
        raise config_error(where, f"an integer {rng}", value, f"use a value {rng}")
    return value


def as_str(value: object, where: str, fix: str = "write it in quotes") -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise config_error(where, "a non-empty string", value, fix)
    return value


def as_choice(value: object, where: str, choices: Collection[str]) -> str:
    """One of ``choices`` (with a did-you-mean hint)."""
    options = ", ".join(repr(c) for c in choices)
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise config_error(where, f"one of {options}", value, f"use one of {options}{hint}")
    return value
