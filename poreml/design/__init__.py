"""The design stage: parameters, parameter constraints, objectives, search space, campaign config.

Importing this package does not import torch; :class:`SearchSpace` (the DataFrame <-> tensor
transform, which needs torch and BoTorch) is loaded on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poreml.design.config import CampaignConfig
from poreml.design.expressions import Expression, Inequality, parse_expression, parse_inequality
from poreml.design.objectives import (
    Objective,
    OutcomeConstraint,
    outcome_constraint_matrix,
    reference_point,
    to_maximization,
)
from poreml.design.parameters import (
    CategoricalParameter,
    ContinuousParameter,
    FixedParameter,
    Parameter,
    complete_parameters,
    parameter_from_dict,
)

if TYPE_CHECKING:
    from poreml.design.search_space import SearchSpace

__all__ = [
    "CampaignConfig",
    "CategoricalParameter",
    "ContinuousParameter",
    "Expression",
    "FixedParameter",
    "Inequality",
    "Objective",
    "OutcomeConstraint",
    "Parameter",
    "SearchSpace",
    "complete_parameters",
    "outcome_constraint_matrix",
    "parameter_from_dict",
    "parse_expression",
    "parse_inequality",
    "reference_point",
    "to_maximization",
]


def __getattr__(name: str) -> Any:
    if name == "SearchSpace":
        from poreml.design.search_space import SearchSpace

        return SearchSpace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
