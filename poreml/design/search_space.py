"""The search space: THE one place where contract DataFrames become tensors and back.

Encoding of a design row as a tensor row ``x`` of length ``d`` (``feature_names`` gives the
columns):

* first, one column per free :class:`~poreml.design.parameters.ContinuousParameter`, in
  contract order, mapped onto ``[0, 1]``: ``(v - low) / (high - low)`` on a linear scale,
  ``(log10 v - log10 low) / (log10 high - log10 low)`` on a log scale;
* last, one column per :class:`~poreml.design.parameters.CategoricalParameter` with two or
  more values (in practice only ``route``): the *integer code* of the category, stored as a
  float. The code is the position in ``parameter.values``, which is in contract order
  (``schema.ROUTES``) - e.g. with all three routes allowed, ``bottom_up = 0``,
  ``top_down = 1``, ``transcription = 2``. Its :attr:`SearchSpace.bounds` are
  ``[0, k - 1]``. This is the encoding BoTorch's mixed optimiser ``optimize_acqf_mixed``
  (one ``fixed_features`` dict per category, :meth:`SearchSpace.fixed_features_list`) and
  ``MixedSingleTaskGP(cat_dims=...)`` expect.

Fixed parameters (and categorical ones with a single value) take no column; they are filled
back in by :meth:`SearchSpace.from_tensor` and substituted as constants in the constraints.

:meth:`SearchSpace.decode` is the one differentiable map from encoded tensors to design
tensors in physical units; :meth:`SearchSpace.from_tensor`, the parameter constraints and the
campaign's physics-aware models all go through it.

Parameter constraints are :class:`~poreml.design.expressions.Inequality` objects in original
units. A constraint that is linear in original units *and* involves only linear-scale free
parameters stays linear on the cube and is exported in BoTorch's ``inequality_constraints``
format; every other one (products, powers, or any use of a log-scaled parameter) is exported
as a ``nonlinear_inequality_constraints`` callable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from botorch.utils.transforms import normalize, unnormalize
from torch import Tensor
from torch.quasirandom import SobolEngine

from poreml.data import schema
from poreml.design.checks import check_keys, check_type_field
from poreml.design.expressions import Inequality, parse_inequality
from poreml.design.parameters import (
    CategoricalParameter,
    ContinuousParameter,
    FixedParameter,
    Parameter,
    parameter_from_dict,
    validate_space,
)
from poreml.exceptions import ConfigError, DataValidationError, Problem

__all__ = ["CubeConstraint", "SearchSpace"]

BOUNDS_RTOL = 1e-9
"""Relative slack (of the bounds' span) allowed by :meth:`SearchSpace.contains` on bounds."""
MAX_SOBOL_DRAWS = 2**20
"""Most Sobol points :meth:`SearchSpace.sample_tensor` draws before giving up."""

LinearConstraint = tuple[Tensor, Tensor, float]
"""BoTorch's ``(indices, coefficients, rhs)``: ``sum(X[..., indices] * coefficients) >= rhs``."""


def _constraint_key(i: int) -> str:
    return f"parameter_constraints[{i}].expr"


def _contract_code(column: str, category: str) -> float:
    """Position of ``category`` among the contract's categories of ``column`` (e.g. routes)."""
    return float(schema.COLUMNS[column].categories.index(category))


@dataclass(frozen=True, eq=False)
class CubeConstraint:
    """One parameter constraint as a function of the encoded tensor: ``c(x) >= 0`` is feasible.

    The callable form of BoTorch's ``nonlinear_inequality_constraints``. The value is the
    constraint's slack in original units (see :attr:`Inequality.slack`).

    Attributes:
        space: the search space that defines the encoding.
        inequality: the constraint in original units.
    """

    space: SearchSpace
    inequality: Inequality

    def __call__(self, x: Tensor) -> Tensor:
        """Slack of the constraint.

        Args:
            x: encoded points, shape ``(..., d)`` (a single point of shape ``(d,)`` included).

        Returns:
            Slack, shape ``(...)`` (a 0-d tensor for one point); differentiable in ``x``.
        """
        return self.inequality.evaluate(self.space.decode(x))

    def __repr__(self) -> str:
        return f"CubeConstraint({str(self.inequality)!r})"


class SearchSpace:
    """Design parameters plus parameter constraints, with the DataFrame <-> tensor transform.

    Args:
        parameters: parameters for some design columns; the others are fixed at
            ``schema.DESIGN_DEFAULTS``.
        constraints: parameter constraints over continuous design columns, in original units.
            Columns held fixed enter them as constants.

    Raises:
        ConfigError: duplicate parameters, no free parameter, a constraint over a categorical
            or unknown column, or a constraint that the fixed values already violate.

    Example:
        >>> space = SearchSpace(
        ...     [ContinuousParameter("porosity", (0.0, 0.8)),
        ...      ContinuousParameter("closed_pore_fraction", (0.0, 1.0))],
        ...     [parse_inequality("porosity * (1 - closed_pore_fraction) <= 0.6",
        ...                       ["porosity", "closed_pore_fraction"])],
        ... )
        >>> X = space.sample_tensor(8, seed=0)      # (8, 2), inside the constraint
        >>> df = space.from_tensor(X)               # 8 rows, every design column
    """

    def __init__(
        self, parameters: Iterable[Parameter], constraints: Iterable[Inequality] = ()
    ) -> None:
        self._constraints = tuple(constraints)
        self._parameters = validate_space(parameters, self._constraints)
        self._continuous = tuple(p for p in self._parameters if isinstance(p, ContinuousParameter))
        self._categorical = tuple(
            p
            for p in self._parameters
            if isinstance(p, CategoricalParameter) and len(p.values) >= 2
        )
        self._fixed: dict[str, float | str] = {}
        for p in self._parameters:
            if isinstance(p, FixedParameter):
                self._fixed[p.name] = p.value
            elif isinstance(p, CategoricalParameter) and len(p.values) == 1:
                self._fixed[p.name] = p.values[0]
        self._feature_names = tuple(p.name for p in (*self._continuous, *self._categorical))
        self._index = {name: i for i, name in enumerate(self._feature_names)}

        dd = torch.double
        t_low, t_high = [], []
        for p in self._continuous:
            lo, hi = p.bounds
            if p.scale == "log":
                lo, hi = math.log10(lo), math.log10(hi)
            t_low.append(lo)
            t_high.append(hi)
        self._t_bounds = torch.tensor([t_low, t_high], dtype=dd).reshape(2, len(self._continuous))
        low = [0.0] * len(self._feature_names)
        high = [1.0] * len(self._continuous) + [float(len(p.values) - 1) for p in self._categorical]
        self._bounds = torch.tensor([low, high], dtype=dd)

        self._linear: list[LinearConstraint] = []
        self._nonlinear: list[tuple[CubeConstraint, bool]] = []
        for ineq in self._constraints:
            self._add_constraint(ineq)

    # -- construction helpers --------------------------------------------------------------------
    def _add_constraint(self, ineq: Inequality) -> None:
        free = [name for name in ineq.variables if name in self._index]
        if not free:
            return  # only fixed columns, and validate_space checked they satisfy it
        by_name = {p.name: p for p in self._continuous}
        if ineq.is_linear() and all(by_name[n].scale == "linear" for n in free):
            coefs, const = ineq.linear_coefficients()
            if not any(name in self._index for name in coefs):  # free terms cancel out
                const += sum(c * float(self._fixed[n]) for n, c in coefs.items())
                if const < 0:
                    raise ConfigError(
                        f"parameter_constraints: {str(ineq)!r} reduces to a constant that is "
                        "violated, so no design is feasible. Fix: correct the constraint."
                    )
                return
            idx, cube_coefs = [], []
            for name, coef in sorted(coefs.items(), key=lambda kv: self._index.get(kv[0], -1)):
                if name in self._index:
                    lo, hi = by_name[name].bounds
                    idx.append(self._index[name])
                    cube_coefs.append(coef * (hi - lo))
                    const += coef * lo
                else:
                    const += coef * float(self._fixed[name])
            self._linear.append(
                (
                    torch.tensor(idx, dtype=torch.long),
                    torch.tensor(cube_coefs, dtype=torch.double),
                    -const,
                )
            )
        else:
            self._nonlinear.append((CubeConstraint(self, ineq), True))

    # -- properties ---------------------------------------------------------------------------
    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """One parameter per design column, contract order (unlisted ones fixed at default)."""
        return self._parameters

    @property
    def constraints(self) -> tuple[Inequality, ...]:
        """The parameter constraints, in original units."""
        return self._constraints

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Design column of each tensor column, length ``d``."""
        return self._feature_names

    @property
    def dim(self) -> int:
        """``d``, the number of tensor columns."""
        return len(self._feature_names)

    @property
    def continuous_dims(self) -> list[int]:
        """Tensor columns of the continuous parameters (the first ones)."""
        return list(range(len(self._continuous)))

    @property
    def categorical_dims(self) -> list[int]:
        """Tensor columns holding integer category codes (the last ones; e.g. ``route``)."""
        n = len(self._continuous)
        return list(range(n, n + len(self._categorical)))

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """For each categorical column: the categories, position = integer code."""
        return {p.name: p.values for p in self._categorical}

    @property
    def fixed_values(self) -> dict[str, float | str]:
        """Design columns that take no tensor column, with their value."""
        return dict(self._fixed)

    @property
    def bounds(self) -> Tensor:
        """Box of the encoded space, shape ``(2, d)``, float64: ``[0, 1]`` for continuous
        columns and ``[0, k - 1]`` for a categorical column with ``k`` categories."""
        return self._bounds.clone()

    @property
    def inequality_constraints(self) -> list[LinearConstraint] | None:
        """Linear parameter constraints in BoTorch's intra-point format, on the encoded space.

        Each is ``(indices, coefficients, rhs)`` (long tensor, float64 tensor, float) with
        ``sum(X[..., indices] * coefficients) >= rhs``; ``None`` when there are none
        (BoTorch's "no constraint" value).
        """
        return [(i.clone(), c.clone(), r) for i, c, r in self._linear] or None

    @property
    def nonlinear_inequality_constraints(self) -> list[tuple[CubeConstraint, bool]] | None:
        """Nonlinear parameter constraints as BoTorch ``(callable, is_intrapoint)`` tuples.

        Each callable maps an encoded point of shape ``(d,)`` (or a batch ``(..., d)``) to its
        slack, shape ``()`` (or ``(...)``), feasible where ``>= 0``. ``is_intrapoint`` is
        always True. ``None`` when there are none. BoTorch needs feasible starting points
        with these: pass ``batch_initial_conditions`` built from :meth:`sample_tensor`.
        """
        return list(self._nonlinear) or None

    def fixed_features_list(self) -> list[dict[int, float]]:
        """One ``{dim: code}`` per combination of categories, for ``optimize_acqf_mixed``.

        Returns:
            E.g. ``[{6: 0.0}, {6: 1.0}, {6: 2.0}]`` for three routes in column 6; ``[]``
            when the space has no categorical column (use ``optimize_acqf`` then).
        """
        dims = self.categorical_dims
        if not dims:
            return []
        ranges = [range(len(p.values)) for p in self._categorical]
        return [
            {d: float(c) for d, c in zip(dims, combo, strict=True)}
            for combo in itertools.product(*ranges)
        ]

    # -- transforms ---------------------------------------------------------------------------
    def to_tensor(
        self,
        df: pd.DataFrame,
        *,
        dtype: torch.dtype = torch.double,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Encode design rows.

        Args:
            df: one row per design with (at least) a column for each entry of
                :attr:`feature_names`; other columns (fixed design columns, measurements,
                ``candidate_id``) are ignored. Values outside the bounds are encoded outside
                ``[0, 1]`` (outside data stays usable).
            dtype: tensor dtype (float64 by default, as BoTorch recommends).
            device: tensor device.

        Returns:
            Tensor of shape ``(len(df), d)``.

        Raises:
            DataValidationError: a column is missing, or a cell is empty, non-numeric,
                ``<= 0`` for a log-scaled column, or a category outside the allowed values.
        """
        if not isinstance(df, pd.DataFrame):
            raise DataValidationError(
                [Problem(None, None, type(df).__name__, "a pandas DataFrame of design rows")]
            )
        problems = [
            Problem(None, name, "<missing column>", f"a {name} column")
            for name in self._feature_names
            if name not in df.columns
        ]
        if problems:
            raise DataValidationError(problems)
        cols: list[np.ndarray] = []
        for p in self._continuous:
            raw = pd.to_numeric(df[p.name], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(raw) | ((raw <= 0) if p.scale == "log" else False)
            for r in np.flatnonzero(bad):
                need = "a positive number (log scale)" if p.scale == "log" else "a finite number"
                problems.append(Problem(int(r) + 1, p.name, df[p.name].iloc[r], need))
            with np.errstate(all="ignore"):
                cols.append(np.log10(raw) if p.scale == "log" else raw)
        for p in self._categorical:
            codes = {v: float(i) for i, v in enumerate(p.values)}
            raw_cat = df[p.name].tolist()
            col = np.full(len(df), np.nan)
            for r, v in enumerate(raw_cat):
                if isinstance(v, str) and v in codes:
                    col[r] = codes[v]
                else:
                    problems.append(
                        Problem(r + 1, p.name, v, "one of " + ", ".join(map(repr, p.values)))
                    )
            cols.append(col)
        if problems:
            raise DataValidationError(problems)
        X = torch.as_tensor(np.stack(cols, axis=-1).reshape(len(df), self.dim), dtype=torch.double)
        n = len(self._continuous)
        if n:
            X[:, :n] = normalize(X[:, :n], self._t_bounds, update_constant_bounds=False)
        return X.to(dtype=dtype, device=device)

    def from_tensor(self, X: Tensor) -> pd.DataFrame:
        """Decode encoded points into design rows.

        Continuous values are clipped to the parameter bounds, category codes rounded to the
        nearest valid code; fixed columns are filled in.

        Args:
            X: encoded points, shape ``(n, d)``.

        Returns:
            DataFrame with ``n`` rows and every design column (``schema.DESIGN_COLUMNS``, in
            contract order): ``route`` as strings, the others as float64.

        Raises:
            DataValidationError: ``X`` has the wrong shape or contains NaN/inf.
        """
        if not isinstance(X, Tensor) or X.ndim != 2 or X.shape[-1] != self.dim:
            shape = tuple(X.shape) if isinstance(X, Tensor) else type(X).__name__
            raise DataValidationError(
                [Problem(None, None, shape, f"a tensor of shape (n, {self.dim})")]
            )
        Xd = X.detach().to(device="cpu", dtype=torch.double, copy=True)
        if not torch.isfinite(Xd).all():
            rows = torch.nonzero(~torch.isfinite(Xd).all(dim=-1)).flatten().tolist()
            raise DataValidationError(
                [Problem(r + 1, None, "NaN/inf", "finite encoded values") for r in rows]
            )
        n = len(Xd)
        out: dict[str, Any] = {}
        for name, value in self._fixed.items():
            out[name] = [value] * n if isinstance(value, str) else np.full(n, float(value))
        n_cont = len(self._continuous)
        Xd[:, :n_cont] = Xd[:, :n_cont].clamp(0.0, 1.0)
        values = self.decode(Xd)
        for p in self._continuous:
            lo, hi = p.bounds
            out[p.name] = np.clip(values[p.name].numpy(), lo, hi)
        for d, p in zip(self.categorical_dims, self._categorical, strict=True):
            codes = Xd[:, d].round().clamp(0, len(p.values) - 1).long().tolist()
            out[p.name] = [p.values[c] for c in codes]
        df = pd.DataFrame({name: out[name] for name in schema.DESIGN_COLUMNS})
        return df.astype({n: "float64" for n in schema.CONTINUOUS_DESIGN_COLUMNS})

    def decode(self, X: Tensor) -> dict[str, Tensor]:
        """Design tensors in physical units from encoded points (differentiable).

        The inverse of :meth:`to_tensor` on tensors, and the map every consumer of the encoded
        space uses (:meth:`from_tensor`, the parameter constraints, physics-aware models).

        Args:
            X: encoded points, shape ``(..., d)``; any batch shape, e.g. ``(n, d)`` or BoTorch's
                ``(b, q, d)``, a single point ``(d,)`` included.

        Returns:
            One tensor per design column (``schema.DESIGN_COLUMNS``, contract order), each of
            shape ``X.shape[:-1]`` with ``X``'s dtype and device:

            * free continuous columns in physical units, differentiable in ``X`` (not clipped:
              points outside the unit cube extrapolate, linearly or in log10);
            * fixed columns as constants;
            * ``route`` (any categorical column) as a float code in contract order
              (``schema.ROUTES``: bottom_up 0, top_down 1, transcription 2), from the space's
              code rounded to the nearest allowed category; not differentiable.
        """
        shape = X.shape[:-1]
        out: dict[str, Tensor] = {}
        n = len(self._continuous)
        if n:
            t = unnormalize(X[..., :n], self._t_bounds.to(X), update_constant_bounds=False)
            for j, p in enumerate(self._continuous):
                out[p.name] = 10.0 ** t[..., j] if p.scale == "log" else t[..., j]
        for d, p in zip(self.categorical_dims, self._categorical, strict=True):
            table = torch.tensor([_contract_code(p.name, v) for v in p.values]).to(X)
            out[p.name] = table[X[..., d].detach().round().clamp(0, len(p.values) - 1).long()]
        for name, value in self._fixed.items():
            code = _contract_code(name, value) if isinstance(value, str) else float(value)
            out[name] = torch.full(shape, code, dtype=X.dtype, device=X.device)
        return {name: out[name] for name in schema.DESIGN_COLUMNS}

    # -- checks -------------------------------------------------------------------------------
    def evaluate_constraints(self, X: Tensor) -> Tensor:
        """Slack of every parameter constraint at encoded points.

        Args:
            X: encoded points, shape ``(..., d)``.

        Returns:
            Tensor of shape ``(..., len(constraints))`` in original units; ``>= 0`` is
            feasible.
        """
        if not self._constraints:
            return X.new_zeros((*X.shape[:-1], 0))
        values = self.decode(X)
        cols = [
            torch.as_tensor(c.evaluate(values), dtype=X.dtype, device=X.device).expand(X.shape[:-1])
            for c in self._constraints
        ]
        return torch.stack(cols, dim=-1)

    def contains(self, df: pd.DataFrame, *, atol: float = 1e-6) -> np.ndarray:
        """Which design rows lie in the space.

        A row is inside when every free continuous value lies within its bounds (up to
        ``BOUNDS_RTOL`` of the span), every category is allowed, every fixed column present
        in ``df`` equals its fixed value (absent fixed columns count as equal) and every
        parameter constraint's slack is ``>= -atol`` (original units). Empty or non-numeric
        cells make a row outside.

        Args:
            df: design rows with a column per entry of :attr:`feature_names` (at least).
            atol: tolerance on the constraints' slack.

        Returns:
            Boolean array of shape ``(len(df),)``.

        Raises:
            DataValidationError: a column of :attr:`feature_names` is missing.
        """
        missing = [n for n in self._feature_names if n not in df.columns]
        if missing:
            raise DataValidationError(
                [Problem(None, n, "<missing column>", f"a {n} column") for n in missing]
            )
        mask = np.ones(len(df), dtype=bool)
        values: dict[str, Any] = {}
        for p in self._parameters:
            present = p.name in df.columns
            if isinstance(p, ContinuousParameter):  # free: the column is present
                v = pd.to_numeric(df[p.name], errors="coerce").to_numpy(dtype=float)
                lo, hi = p.bounds
                tol = BOUNDS_RTOL * (hi - lo)
                mask &= (v >= lo - tol) & (v <= hi + tol)
                values[p.name] = v
            elif isinstance(p, CategoricalParameter):
                if present:
                    mask &= df[p.name].isin(p.values).to_numpy()
            elif isinstance(p.value, str):
                if present:
                    mask &= (df[p.name] == p.value).to_numpy()
            elif present:
                v = pd.to_numeric(df[p.name], errors="coerce").to_numpy(dtype=float)
                mask &= np.abs(v - p.value) <= BOUNDS_RTOL * max(1.0, abs(p.value))
                values[p.name] = v
            else:
                values[p.name] = float(p.value)
        with np.errstate(all="ignore"):
            for c in self._constraints:
                mask &= np.broadcast_to(np.asarray(c.is_satisfied(values, atol=atol)), mask.shape)
        return mask

    # -- sampling -----------------------------------------------------------------------------
    def sample_tensor(self, n: int, seed: int, *, dtype: torch.dtype = torch.double) -> Tensor:
        """Space-filling encoded points that satisfy every parameter constraint.

        Continuous columns: the first feasible points of a scrambled Sobol sequence (seeded),
        drawn in growing batches and filtered by the constraints. Categorical columns: codes
        (combinations, with several categorical columns) spread evenly - counts differ by at
        most one - in a seeded random order.

        Properties callers rely on (tested):

        * uniform on the encoded cube, so log-scaled columns are log-uniform in original units;
        * nested prefixes of the continuous columns: ``sample_tensor(m, seed)`` is the first
          ``m`` rows of ``sample_tensor(n, seed)`` for ``m <= n`` (the campaign continues its
          space-filling batches this way). The route codes are balanced within each call, not
          nested across calls;
        * stratified: without parameter constraints, the first ``2**k`` points put exactly one
          point in each of the ``2**k`` equal slices of every continuous column (Sobol's
          one-dimensional projections);
        * deterministic for a seed, different across seeds.

        Args:
            n: number of points (``>= 0``).
            seed: seed of the Sobol scrambling and of the category order.
            dtype: tensor dtype.

        Returns:
            Tensor of shape ``(n, d)``.

        Raises:
            ConfigError: fewer than ``n`` of ``MAX_SOBOL_DRAWS`` Sobol points satisfy the
                parameter constraints (the feasible region is (nearly) empty).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"sample: expected n as an integer >= 0, got {n!r}. Fix: pass n.")
        n_cont = len(self._continuous)
        parts: list[Tensor] = []
        if n_cont:
            parts.append(self._sobol_feasible(n, n_cont, seed))
        if self._categorical:
            combos = torch.tensor(
                [list(ff.values()) for ff in self.fixed_features_list()], dtype=torch.double
            )
            gen = torch.Generator().manual_seed(int(seed))
            order = torch.randperm(n, generator=gen)
            picks = torch.arange(n) % len(combos)
            parts.append(combos[picks[order]].reshape(n, len(self._categorical)))
        return torch.cat(parts, dim=-1).to(dtype)

    def _sobol_feasible(self, n: int, n_cont: int, seed: int) -> Tensor:
        engine = SobolEngine(dimension=n_cont, scramble=True, seed=int(seed))
        kept: list[Tensor] = []
        n_kept, drawn, batch = 0, 0, max(64, 2 * n)
        # Category columns do not enter constraints; pad them with zeros for evaluation.
        pad = torch.zeros(1, len(self._categorical), dtype=torch.double)
        while n_kept < n:
            if drawn >= MAX_SOBOL_DRAWS:
                raise ConfigError(
                    f"parameter_constraints: expected a feasible region large enough to sample "
                    f"{n} points, got {n_kept} feasible among {drawn} Sobol points "
                    f"(fraction {n_kept / drawn:.2g}). Fix: loosen the constraints or widen "
                    "the parameter bounds."
                )
            size = min(batch, MAX_SOBOL_DRAWS - drawn)
            U = engine.draw(size, dtype=torch.double)
            drawn += size
            batch *= 2
            if self._constraints:
                X = torch.cat([U, pad.expand(size, -1)], dim=-1)
                ok = (self.evaluate_constraints(X) >= 0).all(dim=-1)
                U = U[ok]
            kept.append(U)
            n_kept += len(U)
        return torch.cat(kept)[:n] if kept else torch.zeros(0, n_cont, dtype=torch.double)

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """The project's one design sampler: :meth:`sample_tensor` decoded by
        :meth:`from_tensor`.

        ``SearchSpace.contract_box().sample(n, seed)`` samples the whole contract design box.

        Args:
            n: number of designs (``>= 0``).
            seed: seed of the Sobol scrambling and of the route order.

        Returns:
            ``n`` rows with every design column (``schema.DESIGN_COLUMNS``, contract order), no
            ``candidate_id``.
        """
        return self.from_tensor(self.sample_tensor(n, seed))

    @classmethod
    def contract_box(cls) -> SearchSpace:
        """The contract's whole design box: every design column free, no constraint.

        Each continuous design column spans its contract bounds (``schema.COLUMNS[name]
        .bounds``), on a log scale where the schema says so (``pore_size_nm``,
        ``si_domain_nm``); ``route`` may take every contract route. ``contract_box().sample(n,
        seed)`` is the project's space-filling batch of designs (demo batches, surrogate
        training and test sets, API benchmarks).

        Returns:
            A search space with ``dim == len(schema.DESIGN_COLUMNS)`` (eight continuous
            columns, then the route code).
        """
        params: list[Parameter] = []
        for name in schema.DESIGN_COLUMNS:
            col = schema.COLUMNS[name]
            if col.categories:
                params.append(CategoricalParameter(name, col.categories))
            else:
                assert col.bounds is not None, f"design column {name} has contract bounds"
                scale = "log" if col.log_scale else "linear"
                params.append(ContinuousParameter(name, col.bounds, scale))
        return cls(params)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``"type"`` field (all parameters, constraint texts)."""
        return {
            "type": type(self).__name__,
            "parameters": [p.to_dict() for p in self._parameters],
            "constraints": [c.text or str(c) for c in self._constraints],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Inverse of :meth:`to_dict`."""
        fields = ("type", "parameters", "constraints")
        check_keys(data, "search_space", allowed=fields, required=fields)
        check_type_field(data, cls.__name__, "search_space")
        params = [parameter_from_dict(p) for p in data["parameters"]]
        constraints = [
            parse_inequality(text, schema.CONTINUOUS_DESIGN_COLUMNS, where=_constraint_key(i))
            for i, text in enumerate(data["constraints"])
        ]
        return cls(params, constraints)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self._parameters == other._parameters and self._constraints == other._constraints

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        cons = ", ".join(repr(str(c)) for c in self._constraints)
        return f"SearchSpace(features={list(self._feature_names)}, constraints=[{cons}])"
