"""Design parameters: what a campaign may vary, and what it holds fixed.

Three small frozen objects, each validated against the data contract
(:mod:`poreml.data.schema`) when built and each round-tripping through JSON with a ``"type"``
field:

* :class:`ContinuousParameter` - a float design column searched within ``bounds`` (inside the
  contract range) on a ``"linear"`` or ``"log"`` scale;
* :class:`CategoricalParameter` - a categorical design column (``route``) restricted to
  ``values``;
* :class:`FixedParameter` - a design column held at one value.

Design columns a campaign does not mention are fixed at ``schema.DESIGN_DEFAULTS``
(:func:`complete_parameters`). Error messages name the campaign-config key
(``parameters.<name>.<field>``) so the same text serves TOML files and Python callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from poreml.data import schema
from poreml.design.checks import (
    as_choice,
    as_float,
    check_keys,
    check_type_field,
    config_error,
    did_you_mean,
)
from poreml.design.expressions import Inequality
from poreml.exceptions import ConfigError

__all__ = [
    "SCALES",
    "CategoricalParameter",
    "ContinuousParameter",
    "FixedParameter",
    "Parameter",
    "complete_parameters",
    "parameter_from_dict",
    "validate_space",
]

Scale = Literal["linear", "log"]
SCALES: tuple[Scale, ...] = ("linear", "log")
"""Allowed values of :attr:`ContinuousParameter.scale`."""


def _design_column(name: object, dtype: str, kind: str) -> schema.Column:
    """The contract design column ``name``, which must have ``dtype``."""
    if not isinstance(name, str) or name not in schema.DESIGN_COLUMNS:
        hint = did_you_mean(name, schema.DESIGN_COLUMNS) if isinstance(name, str) else ""
        raise config_error(
            f"parameters.{name}",
            f"a design column (one of {', '.join(schema.DESIGN_COLUMNS)})",
            name,
            f"use a contract design column name{hint}",
        )
    col = schema.COLUMNS[name]
    if col.dtype != dtype:
        if col.dtype == "category":
            fix = f"{name} is categorical: use values = [...] or fixed = '...'"
        else:
            fix = f"{name} is continuous: use bounds = [low, high] or fixed = <number>"
        raise ConfigError(f"parameters.{name}: a {kind} parameter is not allowed here. Fix: {fix}.")
    return col


@dataclass(frozen=True)
class ContinuousParameter:
    """A float design column searched within ``bounds``.

    Attributes:
        name: a continuous design column (e.g. ``"porosity"``).
        bounds: ``(low, high)`` with ``low < high``, inside the contract range of the column.
        scale: ``"linear"``, or ``"log"`` to search evenly in ``log10`` (needs ``low > 0``).
    """

    name: str
    bounds: tuple[float, float]
    scale: Scale = "linear"

    def __post_init__(self) -> None:
        col = _design_column(self.name, "float", "continuous")
        key = f"parameters.{self.name}"
        raw = self.bounds
        if isinstance(raw, str | bytes) or not hasattr(raw, "__len__") or len(raw) != 2:
            raise config_error(
                f"{key}.bounds", "a list [low, high] of two numbers", raw, "write e.g. [0.0, 0.8]"
            )
        low = as_float(raw[0], f"{key}.bounds[0]")
        high = as_float(raw[1], f"{key}.bounds[1]")
        lo_c, hi_c = col.bounds  # type: ignore[misc]
        if not low < high:
            raise config_error(
                f"{key}.bounds",
                "low < high",
                [low, high],
                f"swap them, or use fixed = {low:g} to hold {self.name} constant",
            )
        if low < lo_c or high > hi_c:
            raise config_error(
                f"{key}.bounds",
                f"a range inside the contract range [{lo_c:g}, {hi_c:g}] ({col.unit})",
                [low, high],
                f"narrow the bounds to within [{lo_c:g}, {hi_c:g}]",
            )
        as_choice(self.scale, f"{key}.scale", SCALES)
        if self.scale == "log" and low <= 0:
            raise config_error(
                f"{key}.bounds",
                "low > 0 for scale = 'log'",
                [low, high],
                "raise the lower bound above 0, or use scale = 'linear'",
            )
        object.__setattr__(self, "bounds", (low, high))

    @property
    def column(self) -> schema.Column:
        """The contract column."""
        return schema.COLUMNS[self.name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field."""
        return {
            "type": type(self).__name__,
            "name": self.name,
            "bounds": list(self.bounds),
            "scale": self.scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContinuousParameter:
        """Inverse of :meth:`to_dict`."""
        check_keys(
            data,
            "parameter",
            allowed=("type", "name", "bounds", "scale"),
            required=("type", "name", "bounds"),
        )
        check_type_field(data, cls.__name__, "parameter")
        return cls(data["name"], tuple(data["bounds"]), data.get("scale", "linear"))


@dataclass(frozen=True)
class CategoricalParameter:
    """A categorical design column restricted to ``values``.

    ``values`` are stored in contract order (``schema.COLUMNS[name].categories``), whatever
    order they were given in, so a value's position - its integer code in the search space -
    does not depend on how the config was written.

    Attributes:
        name: a categorical design column (``"route"``).
        values: allowed categories, non-empty and without repeats.
    """

    name: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        col = _design_column(self.name, "category", "categorical")
        key = f"parameters.{self.name}.values"
        raw = self.values
        if isinstance(raw, str | bytes) or not hasattr(raw, "__iter__"):
            raise config_error(key, "a list of strings", raw, f'write e.g. ["{col.categories[0]}"]')
        raw = list(raw)
        options = ", ".join(repr(c) for c in col.categories)
        if not raw:
            raise config_error(key, f"at least one of {options}", raw, "list the allowed values")
        for i, value in enumerate(raw):
            if value not in col.categories:
                hint = did_you_mean(value, col.categories) if isinstance(value, str) else ""
                raise config_error(
                    f"{key}[{i}]", f"one of {options}", value, f"use one of those{hint}"
                )
        if len(set(raw)) != len(raw):
            dup = next(v for v in raw if raw.count(v) > 1)
            raise config_error(key, "each value once", raw, f"remove the repeated {dup!r}")
        object.__setattr__(self, "values", tuple(c for c in col.categories if c in raw))

    @property
    def column(self) -> schema.Column:
        """The contract column."""
        return schema.COLUMNS[self.name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field."""
        return {"type": type(self).__name__, "name": self.name, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalParameter:
        """Inverse of :meth:`to_dict`."""
        check_keys(
            data,
            "parameter",
            allowed=("type", "name", "values"),
            required=("type", "name", "values"),
        )
        check_type_field(data, cls.__name__, "parameter")
        return cls(data["name"], tuple(data["values"]))


@dataclass(frozen=True)
class FixedParameter:
    """A design column held at one value.

    Attributes:
        name: any design column.
        value: a number inside the contract range (continuous columns) or one of the
            categories (``route``).
    """

    name: str
    value: float | str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in schema.DESIGN_COLUMNS:
            _design_column(self.name, "float", "fixed")  # raises the unknown-name error
        col = schema.COLUMNS[self.name]
        key = f"parameters.{self.name}.fixed"
        if col.dtype == "category":
            value: float | str = as_choice(self.value, key, col.categories)
        else:
            value = as_float(self.value, key)
            lo, hi = col.bounds  # type: ignore[misc]
            if not lo <= value <= hi:
                raise config_error(
                    key,
                    f"a number in the contract range [{lo:g}, {hi:g}] ({col.unit})",
                    self.value,
                    f"use a value within [{lo:g}, {hi:g}]",
                )
        object.__setattr__(self, "value", value)

    @property
    def column(self) -> schema.Column:
        """The contract column."""
        return schema.COLUMNS[self.name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field."""
        return {"type": type(self).__name__, "name": self.name, "value": self.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixedParameter:
        """Inverse of :meth:`to_dict`."""
        check_keys(
            data, "parameter", allowed=("type", "name", "value"), required=("type", "name", "value")
        )
        check_type_field(data, cls.__name__, "parameter")
        return cls(data["name"], data["value"])


Parameter = ContinuousParameter | CategoricalParameter | FixedParameter
"""Any design parameter."""

_PARAMETER_TYPES: dict[str, type[Parameter]] = {
    cls.__name__: cls for cls in (ContinuousParameter, CategoricalParameter, FixedParameter)
}


def parameter_from_dict(data: Mapping[str, Any]) -> Parameter:
    """Rebuild any parameter from its :meth:`to_dict` form, dispatching on ``"type"``.

    Raises:
        ConfigError: unknown or missing ``"type"``, or invalid fields.
    """
    kind = data.get("type") if isinstance(data, Mapping) else None
    if kind not in _PARAMETER_TYPES:
        raise config_error(
            "parameter.type",
            f"one of {', '.join(_PARAMETER_TYPES)}",
            kind,
            "pass a dict produced by a parameter's to_dict()",
        )
    return _PARAMETER_TYPES[kind].from_dict(data)  # type: ignore[attr-defined]


def complete_parameters(parameters: Iterable[Parameter]) -> tuple[Parameter, ...]:
    """Every design column as a parameter, in contract order.

    Columns not in ``parameters`` become :class:`FixedParameter` at
    ``schema.DESIGN_DEFAULTS``.

    Args:
        parameters: parameters for some design columns, at most one per column.

    Returns:
        One parameter per entry of ``schema.DESIGN_COLUMNS``, in that order.

    Raises:
        ConfigError: two parameters share a name, or an entry is not a parameter.
    """
    given: dict[str, Parameter] = {}
    for p in parameters:
        if not isinstance(p, ContinuousParameter | CategoricalParameter | FixedParameter):
            raise config_error(
                "parameters",
                "ContinuousParameter, CategoricalParameter or FixedParameter objects",
                p,
                "build each entry with one of those classes",
            )
        if p.name in given:
            raise ConfigError(
                f"parameters.{p.name}: defined twice. Fix: keep one definition per column."
            )
        given[p.name] = p
    return tuple(
        given.get(name, FixedParameter(name, schema.DESIGN_DEFAULTS[name]))
        for name in schema.DESIGN_COLUMNS
    )


def validate_space(
    parameters: Iterable[Parameter], constraints: Iterable[Inequality] = ()
) -> tuple[Parameter, ...]:
    """Check that parameters and parameter constraints make a usable search space.

    Torch-free, so a config can be validated without loading torch; ``SearchSpace`` runs the
    same checks.

    Args:
        parameters: parameters for some design columns (others: fixed at defaults).
        constraints: parameter constraints in original units.

    Returns:
        The completed parameters (:func:`complete_parameters`).

    Raises:
        ConfigError: no free parameter; a constraint that is not an :class:`Inequality`, uses a
            non-continuous column, or is violated by fixed values alone.
    """
    params = complete_parameters(parameters)
    free = {
        p.name
        for p in params
        if isinstance(p, ContinuousParameter)
        or (isinstance(p, CategoricalParameter) and len(p.values) >= 2)
    }
    if not free:
        raise ConfigError(
            "parameters: expected at least one free parameter (bounds, or two or more values), "
            "got none - every design column is fixed. Fix: give at least one parameter "
            "bounds = [low, high]."
        )
    fixed = {
        p.name: p.value for p in params if isinstance(p, FixedParameter) and p.name not in free
    }
    for i, ineq in enumerate(constraints):
        key = f"parameter_constraints[{i}].expr"
        if not isinstance(ineq, Inequality):
            raise config_error(
                key, "an Inequality", ineq, "parse the text with parse_inequality first"
            )
        bad = sorted(ineq.variables - set(schema.CONTINUOUS_DESIGN_COLUMNS))
        if bad:
            raise config_error(
                key,
                f"only continuous design columns ({', '.join(schema.CONTINUOUS_DESIGN_COLUMNS)})",
                f"<{', '.join(bad)} in {str(ineq)!r}>",
                "constrain continuous parameters only",
            )
        if not ineq.variables & free:
            consts = {n: float(fixed[n]) for n in ineq.variables}
            if not bool(ineq.is_satisfied(consts)):
                raise ConfigError(
                    f"{key}: {str(ineq)!r} involves only fixed parameters ({consts}) and they "
                    "violate it, so no design is feasible. Fix: change the fixed values or the "
                    "constraint."
                )
    return params
