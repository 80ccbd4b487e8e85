"""Campaign configuration: the TOML file of CONTRACT.md section 3, as one frozen object.

.. code-block:: toml

    [campaign]
    name = "td-vs-buffering"     # required
    batch_size = 4               # required, >= 1
    initial_points = 8           # required, >= 0: space-filling points before the model
    seed = 0                     # optional, default 0
    surrogate = "gp"             # optional, default "gp" (resolved by the optimize stage)
    acquisition = "auto"         # optional, default "auto" (resolved by the optimize stage)

    [parameters.<design column>] # one of: bounds (+ scale), values, fixed
    bounds = [low, high]
    scale = "linear" | "log"
    values = ["bottom_up", ...]
    fixed = <number or category>

    [objectives.<measured column>]
    direction = "maximize" | "minimize"
    threshold = <number>         # reference point: worst value still worth having

    [outcome_constraints]
    <measured column> = ">= 80"  # or "<= 150"

    [[parameter_constraints]]
    expr = "porosity * (1 - closed_pore_fraction) <= 0.6"

Design columns not listed under ``[parameters]`` are fixed at their contract defaults. Every
problem raises :class:`~poreml.exceptions.ConfigError` naming the TOML key, what was found and
the fix; unknown keys are errors (with a "did you mean" when one is close).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poreml.data import schema
from poreml.design.checks import (
    as_float,
    as_int,
    as_str,
    check_keys,
    check_type_field,
    config_error,
)
from poreml.design.expressions import Inequality, parse_inequality
from poreml.design.objectives import Objective, OutcomeConstraint
from poreml.design.parameters import (
    CategoricalParameter,
    ContinuousParameter,
    FixedParameter,
    Parameter,
    complete_parameters,
    parameter_from_dict,
    validate_space,
)
from poreml.exceptions import ConfigError

if TYPE_CHECKING:
    from poreml.design.search_space import SearchSpace

__all__ = ["CampaignConfig"]

_TOP_KEYS = (
    "campaign",
    "parameters",
    "objectives",
    "outcome_constraints",
    "parameter_constraints",
)
_CAMPAIGN_KEYS = ("name", "batch_size", "initial_points", "seed", "surrogate", "acquisition")
_CAMPAIGN_REQUIRED = ("name", "batch_size", "initial_points")
_PARAMETER_KEYS = ("bounds", "scale", "values", "fixed")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_\-]*$")
_MAX_SEED = 2**63 - 1
_MAX_BATCH = 1000


def _constraint_key(i: int) -> str:
    return f"parameter_constraints[{i}].expr"


def _parse_constraint(text: object, i: int) -> Inequality:
    return parse_inequality(
        text,  # type: ignore[arg-type]  # non-strings are reported by the parser
        schema.CONTINUOUS_DESIGN_COLUMNS,
        where=_constraint_key(i),
    )


@dataclass(frozen=True)
class CampaignConfig:
    """A validated campaign configuration.

    Build it with :meth:`from_toml`, :meth:`from_toml_string`, :meth:`from_mapping` (the
    parsed-TOML form) or :meth:`from_dict` (the :meth:`to_dict` JSON form), or directly.

    Attributes:
        name: campaign name.
        batch_size: candidates per suggestion round (``>= 1``).
        initial_points: space-filling points before model-based proposals (``>= 0``).
        objectives: what to optimise, at least one, in config order.
        parameters: the parameters the config states, in contract order; the other design
            columns are fixed at their defaults (see :attr:`all_parameters`).
        outcome_constraints: constraints on measured columns, in config order.
        parameter_constraints: constraints on design columns, in config order.
        seed: seed for sampling and optimisation (``>= 0``).
        surrogate: model name, resolved by the optimize stage's registry (default ``"gp"``).
        acquisition: acquisition strategy name, resolved by the optimize stage (default
            ``"auto"``).
    """

    name: str
    batch_size: int
    initial_points: int
    objectives: tuple[Objective, ...]
    parameters: tuple[Parameter, ...] = ()
    outcome_constraints: tuple[OutcomeConstraint, ...] = ()
    parameter_constraints: tuple[Inequality, ...] = ()
    seed: int = 0
    surrogate: str = "gp"
    acquisition: str = "auto"

    def __post_init__(self) -> None:
        as_str(self.name, "campaign.name", 'write e.g. name = "my-campaign"')
        as_int(self.batch_size, "campaign.batch_size", minimum=1, maximum=_MAX_BATCH)
        as_int(self.initial_points, "campaign.initial_points", minimum=0)
        as_int(self.seed, "campaign.seed", minimum=0, maximum=_MAX_SEED)
        for key in ("surrogate", "acquisition"):
            value = getattr(self, key)
            if not isinstance(value, str) or not _IDENTIFIER.match(value):
                raise config_error(
                    f"campaign.{key}",
                    "a lower-case name such as 'gp' or 'auto'",
                    value,
                    f"write e.g. {key} = {'gp' if key == 'surrogate' else 'auto'!r}",
                )
        # Tuples, validated element types, parameters in contract order.
        params = tuple(self.parameters)
        complete_parameters(params)  # type and duplicate checks
        order = {n: i for i, n in enumerate(schema.DESIGN_COLUMNS)}
        object.__setattr__(self, "parameters", tuple(sorted(params, key=lambda p: order[p.name])))
        objectives = tuple(self.objectives)
        if not objectives:
            raise ConfigError(
                "objectives: expected at least one objective, got none. Fix: add e.g. "
                '[objectives.tap_density_g_cm3] with direction = "maximize" and threshold = 0.3.'
            )
        self._check_items(objectives, Objective, "objectives")
        object.__setattr__(self, "objectives", objectives)
        constraints = tuple(self.outcome_constraints)
        self._check_items(constraints, OutcomeConstraint, "outcome_constraints")
        object.__setattr__(self, "outcome_constraints", constraints)
        pcs = tuple(self.parameter_constraints)
        self._check_items(pcs, Inequality, "parameter_constraints")
        object.__setattr__(self, "parameter_constraints", pcs)
        validate_space(params, pcs)  # a free parameter; constraints consistent with it

    @staticmethod
    def _check_items(items: tuple[Any, ...], cls: type, where: str) -> None:
        names = []
        for item in items:
            if not isinstance(item, cls):
                raise config_error(where, f"{cls.__name__} objects", item, f"build {cls.__name__}s")
            names.append(getattr(item, "name", None))
        dup = next((n for n in names if n is not None and names.count(n) > 1), None)
        if dup is not None:
            raise ConfigError(f"{where}.{dup}: defined twice. Fix: keep one definition.")

    # -- derived objects ------------------------------------------------------------------------
    @property
    def all_parameters(self) -> tuple[Parameter, ...]:
        """One parameter per design column, in contract order (unlisted: fixed at default)."""
        return complete_parameters(self.parameters)

    def search_space(self) -> SearchSpace:
        """A new :class:`~poreml.design.search_space.SearchSpace` for this config.

        Imports torch (loading and validating a config does not).
        """
        from poreml.design.search_space import SearchSpace

        return SearchSpace(self.parameters, self.parameter_constraints)

    @property
    def objective_names(self) -> tuple[str, ...]:
        """Measured columns of the objectives, in order."""
        return tuple(o.name for o in self.objectives)

    @property
    def outcome_names(self) -> tuple[str, ...]:
        """Measured columns a model must predict: objectives first, then constrained columns
        that are not objectives (each once, in config order)."""
        names = list(self.objective_names)
        names += [c.name for c in self.outcome_constraints if c.name not in names]
        return tuple(names)

    # -- TOML -----------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: str | Path) -> CampaignConfig:
        """Load a campaign TOML file.

        Raises:
            ConfigError: the file cannot be read, is not valid TOML, or breaks the format
                (the message starts with the path).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path}: cannot read the campaign config ({exc.__class__.__name__}: {exc}). "
                "Fix: pass the path of an existing UTF-8 TOML file."
            ) from None
        try:
            return cls.from_toml_string(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_toml_string(cls, text: str) -> CampaignConfig:
        """Parse campaign TOML text (see the module docstring for the format).

        Raises:
            ConfigError: invalid TOML (with line and column) or an invalid configuration.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"invalid TOML: {exc}. Fix: correct the syntax at that line (strings need "
                "quotes, lists use [ ], e.g. bounds = [0.0, 0.8])."
            ) from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CampaignConfig:
        """Build from the parsed-TOML form (nested dicts, as ``tomllib`` returns).

        Raises:
            ConfigError: naming the offending key.
        """
        check_keys(data, "", allowed=_TOP_KEYS, required=("campaign", "objectives"))
        camp = check_keys(
            data["campaign"], "campaign", allowed=_CAMPAIGN_KEYS, required=_CAMPAIGN_REQUIRED
        )
        params_table = check_keys(
            data.get("parameters", {}),
            "parameters",
            allowed=schema.DESIGN_COLUMNS,
            what="a table of parameters",
        )
        params = [_parameter_from_toml(name, spec) for name, spec in params_table.items()]
        objectives_table = check_keys(
            data["objectives"],
            "objectives",
            allowed=schema.MEASURED_COLUMNS,
            what="a table of objectives",
        )
        objectives = []
        for name, spec in objectives_table.items():
            fields = ("direction", "threshold")
            check_keys(spec, f"objectives.{name}", allowed=fields, required=fields)
            objectives.append(Objective(name, spec["direction"], spec["threshold"]))
        oc_table = check_keys(
            data.get("outcome_constraints", {}),
            "outcome_constraints",
            allowed=schema.MEASURED_COLUMNS,
            what="a table of outcome constraints",
        )
        outcome_constraints = [OutcomeConstraint.from_string(n, t) for n, t in oc_table.items()]
        raw_pcs = data.get("parameter_constraints", [])
        if not isinstance(raw_pcs, list):
            raise config_error(
                "parameter_constraints",
                "an array of tables ([[parameter_constraints]] with expr = ...)",
                raw_pcs,
                'write [[parameter_constraints]] on its own line, then expr = "..."',
            )
        pcs = []
        for i, entry in enumerate(raw_pcs):
            check_keys(entry, f"parameter_constraints[{i}]", allowed=("expr",), required=("expr",))
            pcs.append(_parse_constraint(entry["expr"], i))
        return cls(
            name=camp["name"],
            batch_size=camp["batch_size"],
            initial_points=camp["initial_points"],
            objectives=tuple(objectives),
            parameters=tuple(params),
            outcome_constraints=tuple(outcome_constraints),
            parameter_constraints=tuple(pcs),
            seed=camp.get("seed", 0),
            surrogate=camp.get("surrogate", "gp"),
            acquisition=camp.get("acquisition", "auto"),
        )

    def to_toml(self) -> str:
        """The config as TOML text (CONTRACT.md §3 layout); :meth:`from_toml_string` parses it
        back to an equal config.

        Returns:
            TOML text.
        """
        lines = [
            "[campaign]",
            f"name = {_toml_value(self.name)}",
            f"batch_size = {self.batch_size}",
            f"initial_points = {self.initial_points}",
            f"seed = {self.seed}",
            f"surrogate = {_toml_value(self.surrogate)}",
            f"acquisition = {_toml_value(self.acquisition)}",
            "",
        ]
        for p in self.parameters:
            lines.append(f"[parameters.{p.name}]")
            if isinstance(p, ContinuousParameter):
                lines.append(f"bounds = {_toml_value(list(p.bounds))}")
                lines.append(f"scale = {_toml_value(p.scale)}")
            elif isinstance(p, CategoricalParameter):
                lines.append(f"values = {_toml_value(list(p.values))}")
            elif isinstance(p, FixedParameter):
                lines.append(f"fixed = {_toml_value(p.value)}")
            lines.append("")
        for o in self.objectives:
            lines += [
                f"[objectives.{o.name}]",
                f"direction = {_toml_value(o.direction)}",
                f"threshold = {_toml_value(o.threshold)}",
                "",
            ]
        if self.outcome_constraints:
            lines.append("[outcome_constraints]")
            lines += [
                f"{c.name} = {_toml_value(str(c.op) + ' ' + repr(c.bound))}"
                for c in self.outcome_constraints
            ]
            lines.append("")
        for c in self.parameter_constraints:
            lines += ["[[parameter_constraints]]", f"expr = {_toml_value(c.text or str(c))}", ""]
        return "\n".join(lines)

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Lossless JSON-ready dict with a ``"type"`` field (inverse: :meth:`from_dict`)."""
        return {
            "type": type(self).__name__,
            "name": self.name,
            "batch_size": self.batch_size,
            "initial_points": self.initial_points,
            "seed": self.seed,
            "surrogate": self.surrogate,
            "acquisition": self.acquisition,
            "parameters": [p.to_dict() for p in self.parameters],
            "objectives": [o.to_dict() for o in self.objectives],
            "outcome_constraints": [c.to_dict() for c in self.outcome_constraints],
            "parameter_constraints": [c.text or str(c) for c in self.parameter_constraints],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignConfig:
        """Rebuild from :meth:`to_dict` output (e.g. after ``json.loads``).

        Raises:
            ConfigError: wrong ``"type"``, unknown/missing keys or invalid values.
        """
        keys = (
            "type",
            "name",
            "batch_size",
            "initial_points",
            "seed",
            "surrogate",
            "acquisition",
            "parameters",
            "objectives",
            "outcome_constraints",
            "parameter_constraints",
        )
        check_keys(data, "", allowed=keys, required=keys)
        check_type_field(data, cls.__name__, "")
        for key in ("parameters", "objectives", "outcome_constraints", "parameter_constraints"):
            if not isinstance(data[key], list):
                raise config_error(key, "a list", data[key], "pass the output of to_dict()")
        return cls(
            name=data["name"],
            batch_size=data["batch_size"],
            initial_points=data["initial_points"],
            seed=data["seed"],
            surrogate=data["surrogate"],
            acquisition=data["acquisition"],
            parameters=tuple(parameter_from_dict(p) for p in data["parameters"]),
            objectives=tuple(Objective.from_dict(o) for o in data["objectives"]),
            outcome_constraints=tuple(
                OutcomeConstraint.from_dict(c) for c in data["outcome_constraints"]
            ),
            parameter_constraints=tuple(
                _parse_constraint(t, i) for i, t in enumerate(data["parameter_constraints"])
            ),
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> CampaignConfig:
        """Inverse of :meth:`to_json`.

        Raises:
            ConfigError: invalid JSON or an invalid configuration.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc}. Fix: pass text written by CampaignConfig.to_json()."
            ) from None
        return cls.from_dict(data)


def _toml_value(value: Any) -> str:
    """``value`` as a TOML literal (strings, booleans, numbers and lists of them)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in value) + "]"
    return str(value)


def _parameter_from_toml(name: str, spec: object) -> Parameter:
    """One ``[parameters.<name>]`` table: exactly one of bounds (+scale), values, fixed."""
    where = f"parameters.{name}"
    table = check_keys(spec, where, allowed=_PARAMETER_KEYS)
    kinds = [k for k in ("bounds", "values", "fixed") if k in table]
    col = schema.COLUMNS[name]
    example = (
        f'values = ["{col.categories[0]}", ...] or fixed = "{col.categories[0]}"'
        if col.dtype == "category"
        else "bounds = [low, high] or fixed = <number>"
    )
    if len(kinds) != 1:
        raise config_error(
            where,
            "exactly one of bounds, values, fixed",
            f"<{' and '.join(kinds) if kinds else 'none of them'}>",
            f"write {example}",
        )
    if "scale" in table and kinds[0] != "bounds":
        raise config_error(
            f"{where}.scale", "scale only together with bounds", table["scale"], "remove scale"
        )
    if kinds[0] == "fixed":
        value = table["fixed"]
        if col.dtype != "category":
            value = as_float(value, f"{where}.fixed")
        return FixedParameter(name, value)
    if kinds[0] == "values":
        if col.dtype != "category":
            raise config_error(
                f"{where}.values",
                "bounds = [low, high] for a continuous column",
                table["values"],
                f"{name} is continuous: write bounds = [low, high]",
            )
        return CategoricalParameter(name, table["values"])
    if col.dtype == "category":
        raise config_error(
            f"{where}.bounds",
            f"values = [...] for the categorical column {name}",
            table["bounds"],
            f"write {example}",
        )
    if not isinstance(table["bounds"], list):
        raise config_error(
            f"{where}.bounds",
            "a list [low, high] of two numbers",
            table["bounds"],
            "write e.g. bounds = [0.0, 0.8]",
        )
    return ContinuousParameter(name, tuple(table["bounds"]), table.get("scale", "linear"))
