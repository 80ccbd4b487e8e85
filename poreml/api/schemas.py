"""Request and response models of the HTTP API, generated from the data contract.

The design fields come from :mod:`poreml.data.schema` (names, units, contract bounds, defaults,
routes), so the API cannot drift from the vocabulary of CONTRACT.md §1:

* every design column is optional and takes its contract default when left out;
* numbers are strict (``"0.3"`` and ``true`` are rejected), finite (NaN and infinities are
  rejected) and inside the contract bounds;
* ``route`` is one of the declared routes;
* unknown fields are rejected (``extra="forbid"``), so a misspelt column is a 422, never
  silently ignored.

Objectives and constraints of a screen use the campaign-config form of CONTRACT.md §3 and are
parsed by :class:`~poreml.design.objectives.Objective` and
:class:`~poreml.design.objectives.OutcomeConstraint`, so they are checked exactly as a campaign
config is.

The response models document the answers in the OpenAPI schema; the routes build the answers
as plain JSON from column arrays (validating thousands of rows again would only cost time).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
    create_model,
    field_validator,
    model_validator,
)

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, Column
from poreml.design.objectives import DIRECTIONS, Objective, OutcomeConstraint
from poreml.exceptions import ConfigError
from poreml.surrogates.base import TARGETS

__all__ = [
    "CandidateExplanation",
    "CandidatePrediction",
    "DesignCandidate",
    "DesignContributions",
    "ErrorResponse",
    "ExplainResponse",
    "HealthResponse",
    "ModelInfo",
    "ObjectiveSpec",
    "PredictRequest",
    "PredictResponse",
    "ScreenRequest",
    "ScreenResponse",
    "ScreenedCandidate",
    "TargetExplanation",
    "TargetPrediction",
]

CANDIDATE_ID_MAX_CHARS = 200
"""Longest accepted ``candidate_id``."""

Target = Literal[TARGETS]  # type: ignore[valid-type]
"""A predicted measured column (the surrogates' targets)."""

_FORBID = ConfigDict(extra="forbid")

CONSTRAINT_PATTERN = r"^\s*(>=|<=|>|<)\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
"""The form :meth:`~poreml.design.objectives.OutcomeConstraint.from_string` parses, for the
OpenAPI document only: the text itself is checked by that parser, whose messages say more."""

ConstraintText = Annotated[
    StrictStr,
    Field(json_schema_extra={"pattern": CONSTRAINT_PATTERN}, examples=[">= 80"]),
]


def _design_field(col: Column, *, required: bool) -> tuple[Any, Any]:
    """``(annotation, FieldInfo)`` of one design column for :func:`pydantic.create_model`."""
    text = f"{col.description} [{col.unit}]; {col.describe_range()}"
    default: Any = ... if required else col.default
    if not required:
        text += f"; default {col.default!r}"
    if col.dtype == "category":
        return Literal[col.categories], Field(default, description=text)  # type: ignore[valid-type]
    lo, hi = col.bounds  # type: ignore[misc]
    field = Field(
        default,
        ge=lo,
        le=hi,
        strict=True,
        allow_inf_nan=False,
        description=text,
        json_schema_extra={"unit": col.unit},
    )
    return float, field


def _measured_field(col: Column) -> tuple[Any, Any]:
    """``(annotation, FieldInfo)`` of one optional measured column (CONTRACT.md §4.1)."""
    lo, hi = col.bounds  # type: ignore[misc]
    text = (
        f"measured {col.description} [{col.unit}] of a powder already made; "
        f"{col.describe_range()}; a model that can condition on it does (conditioned_on)"
    )
    field = Field(
        None,
        ge=lo,
        le=hi,
        strict=True,
        allow_inf_nan=False,
        description=text,
        json_schema_extra={"unit": col.unit},
    )
    return float | None, field


_CANDIDATE_ID = (
    StrictStr | None,
    Field(
        None,
        min_length=1,
        max_length=CANDIDATE_ID_MAX_CHARS,
        description="your identifier of the candidate, echoed back; unique within a request",
    ),
)

DesignCandidate: type[BaseModel] = create_model(
    "DesignCandidate",
    __config__=_FORBID,
    __doc__="One candidate: any subset of the design columns and, for a powder already made, "
    "any measured columns (CONTRACT.md §1, §4.1).",
    candidate_id=_CANDIDATE_ID,
    **{name: _design_field(COLUMNS[name], required=False) for name in DESIGN_COLUMNS},
    **{name: _measured_field(COLUMNS[name]) for name in MEASURED_COLUMNS},
)
"""Request model of one candidate; design fields left out take :data:`DESIGN_DEFAULTS`,
measured fields left out are not measured (None)."""


class HealthResponse(BaseModel):
    """Liveness answer."""

    status: Literal["ok"] = "ok"


class ErrorResponse(BaseModel):
    """Every error answer: ``detail`` names the offending field and value.

    For 422 it is a list of ``{"loc", "field", "value", "msg", "type"}`` entries, one per bad
    field; otherwise a sentence.
    """

    detail: str | list[dict[str, Any]]


class DesignRange(BaseModel):
    """Range of one design column in the training data of the served model."""

    unit: str
    contract_low: float | None = Field(description="lower contract bound (None: categorical)")
    contract_high: float | None = Field(description="upper contract bound (None: categorical)")
    trained_low: float | None = Field(description="smallest training value (None: not seen)")
    trained_high: float | None = Field(description="largest training value (None: not seen)")
    trained_values: list[str] | None = Field(
        None, description="categories seen in training (route only)"
    )


class ModelInfo(BaseModel):
    """What the API serves: ``GET /v1/model``."""

    name: str = Field(description="registered model name, e.g. poreml-surrogate")
    version: str = Field(description="model version, echoed as model_version in predictions")
    model_type: str = Field(description="surrogate kind from the surrogate registry")
    targets: list[str] = Field(description="predicted measured columns")
    design_columns: dict[str, DesignRange] = Field(
        description="design columns with contract and trained ranges"
    )
    training_rows: int = Field(description="rows in the training data")
    training_data_sha256: str | None = Field(description="sha256 of the training data")
    interval_level: float = Field(description="coverage of lower/upper (0.9)")
    source: str = Field(description="where the model was loaded from")


class TargetPrediction(BaseModel):
    """Predictive distribution of one target (contract units)."""

    mean: float
    std: float
    lower: float = Field(description="lower end of the central 90 % predictive interval")
    upper: float = Field(description="upper end of the central 90 % predictive interval")


CandidatePrediction: type[BaseModel] = create_model(
    "CandidatePrediction",
    __doc__="A candidate with its design (defaults filled in) and predictions.",
    candidate_id=(str | None, Field(description="as sent (None when not sent)")),
    index=(int, Field(description="0-based position of the candidate in the request")),
    **{name: _design_field(COLUMNS[name], required=True) for name in DESIGN_COLUMNS},
    **{name: (TargetPrediction, ...) for name in TARGETS},
    conditioned_on=(
        list[str],
        Field(
            description="the measured columns of the candidate the model conditioned on (empty "
            "when none: none sent, or a model that predicts from the design alone)"
        ),
    ),
    domain_distance=(
        float,
        Field(
            ge=0.0,
            description="mean distance to the nearest training designs in the model's "
            "standardised feature space, divided by the threshold calibrated on held-out "
            "training rows: <= 1 is within it, larger is extrapolation",
        ),
    ),
    in_domain=(
        bool,
        Field(description="inside the training domain: domain_distance <= 1 and a trained route"),
    ),
)
"""Response model of one predicted candidate."""


class PredictRequest(BaseModel):
    """``POST /v1/predict``: candidates to predict."""

    model_config = _FORBID

    candidates: list[DesignCandidate] = Field(  # type: ignore[valid-type]
        min_length=1,
        description="designs to predict (the server caps their number: answer 413 above it)",
    )

    @field_validator("candidates")
    @classmethod
    def _unique_ids(cls, candidates: list[Any]) -> list[Any]:
        seen: dict[str, int] = {}
        for i, cand in enumerate(candidates):
            cid = cand.candidate_id  # type: ignore[attr-defined]
            if cid is None:
                continue
            if cid in seen:
                raise ValueError(
                    f"candidates[{i}].candidate_id: got {cid!r}, already used by "
                    f"candidates[{seen[cid]}]; expected ids unique within a request"
                )
            seen[cid] = i
        return candidates


class PredictResponse(BaseModel):
    """Answer of ``POST /v1/predict``."""

    model_version: str
    predictions: list[CandidatePrediction]  # type: ignore[valid-type]


class ObjectiveSpec(BaseModel):
    """One objective in the form of CONTRACT.md §3 ``[objectives.<target>]``."""

    model_config = _FORBID

    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    threshold: float | None = Field(
        None,
        strict=True,
        allow_inf_nan=False,
        description="worst value still worth having (contract units); informational here, "
        "defaults to the worst plausible value of the column",
    )


class ScreenRequest(PredictRequest):
    """``POST /v1/screen``: candidates, objectives, outcome constraints, how many to return."""

    objectives: dict[Target, ObjectiveSpec] = Field(  # type: ignore[valid-type]
        min_length=1,
        description='e.g. {"tap_density_g_cm3": {"direction": "maximize", "threshold": 0.3}}',
        json_schema_extra={"maxProperties": len(TARGETS)},
    )
    constraints: dict[Target, ConstraintText] = Field(  # type: ignore[valid-type]
        default_factory=dict,
        description='outcome constraints, e.g. {"ice_pct": ">= 80"}; the bound must lie in the '
        "plausible range of the column",
    )
    top_k: StrictInt = Field(10, ge=1, description="how many ranked candidates to return")

    _objectives: tuple[Objective, ...] = PrivateAttr(default=())
    _constraints: tuple[OutcomeConstraint, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _parse_design_objects(self) -> ScreenRequest:
        objectives = []
        for name, spec in self.objectives.items():
            threshold = spec.threshold
            if threshold is None:
                lo, hi = COLUMNS[name].bounds  # type: ignore[misc]
                threshold = lo if spec.direction == "maximize" else hi
            objectives.append(_parsed(Objective, name, spec.direction, float(threshold)))
        constraints = [
            _parsed(OutcomeConstraint.from_string, name, text)
            for name, text in self.constraints.items()
        ]
        self._objectives = tuple(objectives)
        self._constraints = tuple(constraints)
        return self

    @property
    def parsed_objectives(self) -> tuple[Objective, ...]:
        """The objectives as :class:`~poreml.design.objectives.Objective` objects."""
        return self._objectives

    @property
    def parsed_constraints(self) -> tuple[OutcomeConstraint, ...]:
        """The constraints as :class:`~poreml.design.objectives.OutcomeConstraint` objects."""
        return self._constraints


def _parsed(factory: Any, *args: Any) -> Any:
    """``factory(*args)`` with its ConfigError turned into the ValueError pydantic reports."""
    try:
        return factory(*args)
    except ConfigError as err:
        text = str(err).replace("outcome_constraints.", "constraints.")
        raise ValueError(text) from None


ScreenedCandidate: type[BaseModel] = create_model(
    "ScreenedCandidate",
    __base__=CandidatePrediction,
    __doc__="A screened candidate: predictions, Pareto rank and feasibility probability.",
    pareto_rank=(int, Field(ge=1, description="1 = on the Pareto front of the predicted means")),
    probability_feasible=(
        float,
        Field(ge=0, le=1, description="P(every constraint holds), independent Gaussians"),
    ),
)
"""Response model of one screened candidate."""


class ScreenResponse(BaseModel):
    """Answer of ``POST /v1/screen`` (JSON; ``Accept: text/csv`` gives the same rows as CSV)."""

    model_version: str
    n_screened: int = Field(description="candidates screened")
    objectives: dict[str, ObjectiveSpec]
    constraints: dict[str, str]
    candidates: list[ScreenedCandidate] = Field(  # type: ignore[valid-type]
        description="the top_k candidates: by Pareto rank, then by probability_feasible "
        "(highest first), then by request order"
    )


# --------------------------------------------------------------------------------------------
# Explanations (CONTRACT.md §4.1)

DesignContributions: type[BaseModel] = create_model(
    "DesignContributions",
    __doc__="Contribution of each design column to a target's predicted mean (target's unit).",
    **{name: (float, Field(description=f"contribution of {name}")) for name in DESIGN_COLUMNS},
)
"""Response model of the contributions of one target."""


class TargetExplanation(BaseModel):
    """Additive explanation of one target: ``base_value + sum(contributions) == mean``
    (relative difference at most 1e-6)."""

    base_value: float = Field(description="mean prediction over the background designs")
    contributions: DesignContributions  # type: ignore[valid-type]


CandidateExplanation: type[BaseModel] = create_model(
    "CandidateExplanation",
    __doc__="Explanations of one candidate's predicted means, per target the model predicts.",
    candidate_id=(str | None, Field(description="as sent (None when not sent)")),
    index=(int, Field(description="0-based position of the candidate in the request")),
    **{
        name: (TargetExplanation | None, Field(None, description=f"explanation of {name}"))
        for name in TARGETS
    },
)
"""Response model of one explained candidate."""


class ExplainResponse(BaseModel):
    """Answer of ``POST /v1/explain``."""

    model_version: str
    method: str = Field(description="how the contributions were computed (exact Shapley values)")
    explanations: list[CandidateExplanation]  # type: ignore[valid-type]
