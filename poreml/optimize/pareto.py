"""Pareto fronts and hypervolumes of a campaign, observed and model-predicted.

Everything here works in the *larger-is-better* frame of :mod:`poreml.design.objectives`:
``sign * y`` with ``sign = +1`` for maximised and ``-1`` for minimised objectives, and the
reference point is the signed objective thresholds. Dominance is
:func:`poreml.design.pareto.pareto_mask` (identical non-dominated rows are all on the front);
the hypervolume is an exact sweep over the sorted front for one or two objectives and BoTorch's
:class:`~botorch.utils.multi_objective.hypervolume.Hypervolume` above, so the observed front and
its hypervolume need neither torch nor BoTorch (``observe`` and ``status`` stay light).

Which observations count for the *observed* front (:func:`eligible_mask`):

* the synthesis worked (``feasible`` is not ``False``; a blank flag counts as made);
* every objective is measured;
* every outcome constraint is measured and satisfied (an unmeasured constraint cannot be
  claimed as met).

Points that do not beat the reference point on every objective add no hypervolume; they are
still on the front when nothing dominates them (:func:`observed_front` marks them with
``beyond_reference = False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from poreml.data import schema
from poreml.design.objectives import Objective, OutcomeConstraint, signed_objectives
from poreml.design.pareto import pareto_mask

if TYPE_CHECKING:
    import torch
    from botorch.models.model import Model

    from poreml.design.search_space import SearchSpace

__all__ = [
    "eligible_mask",
    "hypervolume",
    "observed_front",
    "observed_hypervolume",
    "predicted_front",
]


def hypervolume(Y: np.ndarray | torch.Tensor, ref_point: Sequence[float]) -> float:
    """Hypervolume dominated by ``Y`` above ``ref_point`` (larger is better).

    Args:
        Y: outcomes, shape ``(n, m)``; rows with NaN and rows that do not beat the reference
            point on every objective contribute nothing.
        ref_point: reference point, length ``m`` (signed thresholds).

    Returns:
        The hypervolume (0.0 when no row beats the reference point).
    """
    Yn = np.asarray(Y, dtype=float)
    ref = np.asarray(list(ref_point), dtype=float)
    if Yn.ndim != 2 or Yn.shape[-1] != ref.shape[0]:
        raise ValueError(
            f"expected Y of shape (n, {ref.shape[0]}) to match the reference point, got {Yn.shape}"
        )
    Yn = Yn[np.isfinite(Yn).all(axis=-1) & (Yn > ref).all(axis=-1)]
    if Yn.shape[0] == 0:
        return 0.0
    front = np.unique(Yn, axis=0)  # identical rows add no volume
    front = front[pareto_mask(front)]
    if ref.shape[0] == 1:
        return float(front.max() - ref[0])
    if ref.shape[0] == 2:
        # non-dominated in 2-D: sorted by the first objective descending, the second ascends;
        # each point adds the slab between its second objective and the previous point's
        front = front[np.argsort(-front[:, 0], kind="stable")]
        heights = np.diff(np.concatenate([[ref[1]], front[:, 1]]))
        return float(np.sum((front[:, 0] - ref[0]) * heights))
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    hv = Hypervolume(ref_point=torch.as_tensor(ref, dtype=torch.double))
    return float(hv.compute(torch.as_tensor(front, dtype=torch.double)))


def eligible_mask(
    df: pd.DataFrame,
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint],
) -> np.ndarray:
    """Which observations may sit on the observed front.

    Args:
        df: observations with objective / constrained columns (missing columns = not
            measured) and optionally ``feasible`` (``False`` = failed synthesis; blank or
            absent = made).

    Returns:
        Boolean array of shape ``(len(df),)``: made, every objective measured, every outcome
        constraint measured and satisfied.
    """
    ok = np.ones(len(df), dtype=bool)
    if "feasible" in df.columns:
        ok &= ~df["feasible"].map(lambda v: v is False or v is np.False_).to_numpy(dtype=bool)
    ok &= np.isfinite(signed_objectives(df, objectives)).all(axis=-1)
    for c in outcome_constraints:
        if c.name not in df.columns:
            return np.zeros(len(df), dtype=bool)
        values = pd.to_numeric(df[c.name], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ok &= np.asarray(c.is_satisfied(values), dtype=bool)
    return ok


def observed_front(
    df: pd.DataFrame,
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint] = (),
) -> pd.DataFrame:
    """The non-dominated eligible observations.

    Args:
        df: observations: ``candidate_id``, design and measured columns (see
            :func:`eligible_mask`).
        objectives: the campaign's objectives.
        outcome_constraints: the campaign's outcome constraints.

    Returns:
        The front rows of ``df`` (all their columns) plus ``beyond_reference`` (bool: beats
        every threshold, i.e. adds hypervolume), sorted by the first objective, best first.
        Empty (same columns) when nothing is eligible.
    """
    eligible = eligible_mask(df, objectives, outcome_constraints)
    Y = signed_objectives(df, objectives)
    mask = np.zeros(len(df), dtype=bool)
    if eligible.any():
        mask[np.flatnonzero(eligible)] = pareto_mask(Y[eligible])
    front = df.loc[mask].copy()
    ref = np.array([o.maximization_threshold for o in objectives])
    front["beyond_reference"] = (Y[mask] > ref).all(axis=-1) if mask.any() else []
    if len(front) and objectives:
        first = objectives[0]
        front = front.sort_values(first.name, ascending=first.direction == "minimize")
    return front.reset_index(drop=True)


def observed_hypervolume(
    df: pd.DataFrame,
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint] = (),
) -> float:
    """Hypervolume of the eligible observations against the thresholds (original units).

    Args:
        df: observations (see :func:`eligible_mask`).
        objectives: the objectives; their thresholds form the reference point.
        outcome_constraints: the outcome constraints.

    Returns:
        The hypervolume, in the product of the objectives' units (e.g. g/cm³ · %).
    """
    eligible = eligible_mask(df, objectives, outcome_constraints)
    Y = signed_objectives(df, objectives)[eligible]
    return hypervolume(Y, [o.maximization_threshold for o in objectives])


def predicted_front(
    model: Model,
    space: SearchSpace,
    objectives: Sequence[Objective],
    outcome_constraints: Sequence[OutcomeConstraint] = (),
    *,
    outcome_names: Sequence[str] | None = None,
    feasibility_index: int | None = None,
    n: int = 4096,
    seed: int = 0,
    batch: int = 1024,
) -> pd.DataFrame:
    """The front of the model's posterior means over a large constraint-respecting Sobol set.

    Designs are kept when their predicted means meet every outcome constraint (and, with a
    feasibility output, when its predicted mean is at least 0.5), then the non-dominated ones
    are returned.

    Args:
        model: a fitted BoTorch model on the encoded space whose outputs are
            ``outcome_names`` (original units) plus, optionally, a feasibility output.
        space: the search space (encoding and sampler).
        objectives: the objectives.
        outcome_constraints: the outcome constraints.
        outcome_names: model output names in order; default objectives then constrained
            columns.
        feasibility_index: model output holding the predicted probability of a successful
            synthesis, if any.
        n: number of Sobol designs.
        seed: Sobol seed.
        batch: designs per posterior call.

    Returns:
        DataFrame with every design column (contract order), ``predicted_<outcome>_mean`` for
        each output, sorted by the first objective, best first.
    """
    import torch

    names = (
        list(outcome_names)
        if outcome_names is not None
        else _outcome_names(objectives, outcome_constraints)
    )
    X = space.sample_tensor(n, seed)
    means = []
    with torch.no_grad():
        for chunk in X.split(batch):
            means.append(model.posterior(chunk.unsqueeze(-2)).mean.squeeze(-2))
    M = torch.cat(means).double().numpy()
    pred = pd.DataFrame({f"predicted_{name}_mean": M[:, i] for i, name in enumerate(names)})
    ok = np.ones(len(X), dtype=bool)
    for c in outcome_constraints:
        ok &= np.asarray(c.is_satisfied(M[:, names.index(c.name)]), dtype=bool)
    if feasibility_index is not None:
        ok &= M[:, feasibility_index] >= 0.5
    Y = np.stack([o.sign * M[:, names.index(o.name)] for o in objectives], axis=-1)
    mask = np.zeros(len(X), dtype=bool)
    if ok.any():
        mask[np.flatnonzero(ok)] = pareto_mask(Y[ok])
    designs = space.from_tensor(X[torch.as_tensor(mask)])
    front = pd.concat([designs, pred.loc[mask].reset_index(drop=True)], axis=1)
    first = objectives[0]
    col = f"predicted_{first.name}_mean"
    front = front.sort_values(col, ascending=first.direction == "minimize")
    return front.reset_index(drop=True)[[*schema.DESIGN_COLUMNS, *pred.columns]]


def _outcome_names(
    objectives: Sequence[Objective], outcome_constraints: Sequence[OutcomeConstraint]
) -> list[str]:
    names = [o.name for o in objectives]
    names += [c.name for c in outcome_constraints if c.name not in names]
    return names
