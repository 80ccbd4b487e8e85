"""How well the virtual-lab prior has matched the lab so far, route by route.

The campaign's surrogates start from the virtual-lab physics (the prior mean of the
physics-informed GP, the route windows of the feasibility model). A real lab always departs
from it somewhere; this module says where, so a chemist sees when the model has stopped
trusting the physics, and the tracking run records it round by round.

Per synthesis route, over the observations of that route:

* ``tried``, ``made``, ``failed``: designs with a result, successful syntheses, failed ones;
* ``feasibility_agreement``: the share of tried designs whose outcome (made or failed) the
  physics' route windows predicted;
* per campaign outcome measured on made designs: ``n``, ``bias`` (mean of measured − physics
  prediction, outcome units), ``rmse`` and ``misfit`` = ``rmse`` / the outcome's spread over
  all made observations of the campaign (dimensionless: 0 is a perfect prior; about 1 means the
  prior explains nothing of the variation between designs);
* ``misfit``: the median of the outcomes' misfits, and a ``verdict``: ``"no data"``,
  ``"good"`` (< :data:`GOOD`), ``"fair"`` (< :data:`FAIR`) or ``"poor"``.

The physics is the noise-free virtual lab with its default constants (the prior of the
campaign's ``gp`` surrogate), evaluated on numpy: no torch is loaded.

Route exploration (:func:`routes_to_explore`, the campaign setting ``route_floor``; off by
default). The check can also steer the campaign: a route whose prior has not been confirmed
(verdict other than ``"good"``: no made design yet, or a fair or poor match) keeps a floor share
of the campaign's designs. When such a route holds fewer than ``floor × (observations + pending
+ batch)`` designs, one point of the next batch is proposed on that route (the acquisition
maximised with the route held), so the model learns what that route really does before the
budget goes to the routes the prior favours. Measured on the campaign benchmark's labs that
depart from the prior it changed little: the campaign already samples the route the prior
ranks low once its first designs there come back better than predicted, and the misfit of a
wrong prior often still reads "good" relative to the large spread of such a lab; what those
labs do show is an over-confident model, which the campaign's uncertainty widening
(:func:`poreml.optimize.proposals.widening`) addresses and which is on by default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from poreml.data.schema import DESIGN_COLUMNS, ROUTES

__all__ = [
    "FAIR",
    "GOOD",
    "outcome_spread",
    "prior_metrics",
    "route_report",
    "routes_to_explore",
]

GOOD = 0.5
"""Median misfit below which a route's prior counts as ``"good"``."""

FAIR = 1.0
"""Median misfit below which it counts as ``"fair"`` (above: ``"poor"``)."""


def route_report(observations: pd.DataFrame, outcomes: Sequence[str]) -> list[dict[str, Any]]:
    """The prior check of every route (module doc), in contract route order.

    Args:
        observations: the campaign's observations (design columns, measured columns,
            ``feasible``: False = failed synthesis, blank = made).
        outcomes: the campaign's outcome columns (objectives and constrained columns).

    Returns:
        One JSON-ready dict per route of :data:`~poreml.data.schema.ROUTES`.
    """
    if len(observations) == 0:
        return [_empty(route) for route in ROUTES]
    from poreml.virtual_lab.physics import simulate

    designs = observations[list(DESIGN_COLUMNS)]
    prior = simulate({c: designs[c].to_numpy() for c in DESIGN_COLUMNS})
    failed = observations["feasible"].map(lambda v: v is False or v is np.False_).to_numpy(bool)
    made = ~failed
    spreads = {o: outcome_spread(observations.loc[made], o) for o in outcomes}
    report = []
    for route in ROUTES:
        rows = (observations["route"] == route).to_numpy()
        if not rows.any():
            report.append(_empty(route))
            continue
        predicted_made = np.asarray(prior["feasible"], dtype=bool)[rows]
        per_outcome: dict[str, dict[str, float | int | None]] = {}
        for o in outcomes:
            if o not in observations.columns or o not in prior:
                continue
            measured = pd.to_numeric(observations[o], errors="coerce").to_numpy(float)
            ok = rows & made & np.isfinite(measured)
            residual = measured[ok] - np.asarray(prior[o], dtype=float)[ok]
            if residual.size == 0:
                per_outcome[o] = {"n": 0, "bias": None, "rmse": None, "misfit": None}
                continue
            rmse = float(np.sqrt(np.mean(residual**2)))
            per_outcome[o] = {
                "n": int(residual.size),
                "bias": float(residual.mean()),
                "rmse": rmse,
                "misfit": rmse / spreads[o],
            }
        misfits = [v["misfit"] for v in per_outcome.values() if v["misfit"] is not None]
        misfit = float(np.median(misfits)) if misfits else None
        report.append(
            {
                "route": route,
                "tried": int(rows.sum()),
                "made": int((rows & made).sum()),
                "failed": int((rows & failed).sum()),
                "feasibility_agreement": float(np.mean(predicted_made == made[rows])),
                "misfit": misfit,
                "verdict": _verdict(misfit),
                "outcomes": per_outcome,
            }
        )
    return report


def prior_metrics(report: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The report as flat metrics for a tracking run: ``prior.<route>.tried`` and, where
    known, ``prior.<route>.misfit`` and ``prior.<route>.feasibility_agreement``."""
    metrics: dict[str, float] = {}
    for entry in report:
        route = entry["route"]
        metrics[f"prior.{route}.tried"] = float(entry["tried"])
        for key in ("misfit", "feasibility_agreement"):
            if entry[key] is not None:
                metrics[f"prior.{route}.{key}"] = float(entry[key])
    return metrics


def routes_to_explore(
    report: Sequence[dict[str, Any]],
    allowed: Sequence[str],
    pending: Mapping[str, int],
    batch: int,
    floor: float,
    slots: int = 1,
) -> list[str]:
    """Routes the next batch must sample (module doc), most under-sampled first.

    Args:
        report: :func:`route_report` of the observations.
        allowed: the routes the campaign may propose.
        pending: designs per route already proposed and awaiting results.
        batch: size of the batch being proposed.
        floor: share of all designs (observed, pending and this batch) each unconfirmed route
            keeps; 0 turns exploration off.
        slots: most points of the batch given to exploration.

    Returns:
        At most ``min(slots, batch)`` route names; empty when every unconfirmed route holds its
        floor share or only one route is allowed.
    """
    if floor <= 0 or len(allowed) < 2 or batch < 1:
        return []
    total = sum(int(e["tried"]) for e in report) + sum(pending.values()) + batch
    target = floor * total
    short = []
    for entry in report:
        route = entry["route"]
        if route not in allowed or entry["verdict"] == "good":
            continue
        have = int(entry["tried"]) + int(pending.get(route, 0))
        if have < target:
            short.append((have - target, ROUTES.index(route), route))
    return [route for *_, route in sorted(short)[: min(slots, batch)]]


def _empty(route: str) -> dict[str, Any]:
    return {
        "route": route,
        "tried": 0,
        "made": 0,
        "failed": 0,
        "feasibility_agreement": None,
        "misfit": None,
        "verdict": "no data",
        "outcomes": {},
    }


def _verdict(misfit: float | None) -> str:
    if misfit is None:
        return "no data"
    return "good" if misfit < GOOD else "fair" if misfit < FAIR else "poor"


def outcome_spread(frame: pd.DataFrame, name: str) -> float:
    """Standard deviation of an outcome's measured values in ``frame``; when it is zero or
    undefined, the magnitude of their mean (at least 1; 1 when nothing was measured). Also the
    campaign model's constraint scale (:func:`poreml.optimize.models.fit_campaign_model`)."""
    if name not in frame.columns:
        return 1.0
    values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy(float)
    if values.size == 0:
        return 1.0
    sd = float(np.std(values)) if values.size > 1 else 0.0
    return sd if sd > 0 and math.isfinite(sd) else max(abs(float(np.mean(values))), 1.0)
