"""The optimisation campaign: the only mutable domain object of poreml.

A :class:`Campaign` takes and returns DataFrames with contract columns (CONTRACT.md §1):

* :meth:`Campaign.ask` proposes candidates (``candidate_id`` + every design column, plus
  ``predicted_<outcome>_mean`` / ``_std`` when a model proposed them) and records them as
  pending;
* :meth:`Campaign.tell` records results: ``candidate_id`` + any subset of the measured columns
  (blank = not measured) and ``feasible``; rows for unknown ids are outside data and must carry
  every design column.

Proposal strategy. Until ``initial_points`` observations exist, proposals are space-filling:
the search space's constraint-respecting scrambled Sobol sequence (continued across rounds),
with the allowed routes cycled evenly. Then the configured surrogate (default: the
physics-informed GP, one per outcome) is fitted and the acquisition function (qLogNEHVI; over
:data:`~poreml.optimize.acquisition.MAX_NEHVI_OBJECTIVES` objectives qLogNParEGO) is maximised
with outcome constraints inside the acquisition, pending candidates as ``X_pending``, the
categorical ``route`` held exactly (one refinement per route), and parameter constraints as
BoTorch linear / nonlinear inequality constraints (:mod:`poreml.optimize.acquisition`). Every
proposal is checked against the search space (bounds and parameter constraints) before it is
returned.

Failed syntheses. A result with ``feasible = false`` is a failed synthesis. It never enters the
observed Pareto front, it does not train the outcome surrogates (its measurements describe what
the route could make, not the design asked for), and it trains a feasibility model whose
predicted success probability is one more constraint inside the acquisition
(:mod:`poreml.optimize.models`), so designs near failures stop being proposed. A blank or absent
``feasible`` counts as made.

Persistence. A campaign created with :meth:`Campaign.create` lives in a directory
(:mod:`poreml.optimize.store`); every change is written atomically to ``state.json`` under a
file lock, so commands never interleave and an interrupted command leaves the state as it was
before or after. The in-memory object re-reads the state before every change, so several
processes can work on one campaign in turn. :meth:`to_dict` / :meth:`from_dict` round-trip
the whole campaign losslessly through JSON.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poreml.data.schema import (
    COLUMNS,
    CONTINUOUS_DESIGN_COLUMNS,
    DEFAULT_RETENTION_CYCLES,
    DESIGN_COLUMNS,
    MEASURED_COLUMNS,
    PROVENANCE_COLUMNS,
)
from poreml.data.validation import validate_table
from poreml.design.config import CampaignConfig
from poreml.exceptions import (
    CampaignError,
    ConfigError,
    ConflictError,
    DataValidationError,
    OptimizationError,
    Problem,
)
from poreml.optimize.store import (
    DEFAULT_LOCK_TIMEOUT,
    SCHEMA_VERSION,
    STATE_TYPE,
    CampaignStore,
)

if TYPE_CHECKING:
    from torch import Tensor

    from poreml.design.search_space import SearchSpace
    from poreml.optimize.acquisition import AcquisitionSettings
    from poreml.optimize.models import CampaignModel
    from poreml.tracking.base import Tracker

__all__ = [
    "DESIGN_RTOL",
    "ID_PREFIX",
    "VALUE_RTOL",
    "Campaign",
    "TellSummary",
    "config_to_toml",
]

ID_PREFIX = "C"
"""Prefix of generated candidate ids (``C0001``, ``C0002``, …)."""

VALUE_RTOL = 1e-9
"""Relative tolerance under which a re-sent measured value equals the recorded one."""

DESIGN_RTOL = 1e-6
"""Relative tolerance under which a re-sent design value equals the proposed one (CSV
round trips through spreadsheets may shorten numbers)."""

SIGNIFICANT_DIGITS = 6
"""Proposed continuous design values are rounded to this many significant digits (when the
rounded design still satisfies every constraint), so the CSV a lab receives is readable."""

_META_COLUMNS = ("source", "round")
_RESULT_COLUMNS = (*MEASURED_COLUMNS, "feasible")


@dataclass(frozen=True)
class TellSummary:
    """What one :meth:`Campaign.tell` changed.

    Attributes:
        new: ids observed for the first time (pending candidates and outside data).
        updated: ids that already had results and received further measured values.
        unchanged: ids whose rows added nothing (identical re-sends, or only blanks).
        outside: the ids among ``new`` that the campaign had not proposed.
    """

    new: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the campaign state changed."""
        return bool(self.new or self.updated)


class Campaign:
    """A multi-objective Bayesian-optimisation campaign (module doc).

    Build one with :meth:`create` (persisted in a directory), :meth:`load` (an existing
    directory) or directly (in memory, nothing written).

    Args:
        config: the campaign configuration.
        settings: acquisition-optimisation effort (default :class:`AcquisitionSettings()`).
        tracker: where rounds are logged (MLflow or nothing); a side channel, failures in it
            only warn.

    Example:
        >>> campaign = Campaign.create("runs/td", "experiments/campaign_td_vs_buffering.toml")
        >>> batch = campaign.ask(4)                       # doctest: +SKIP
        >>> campaign.tell(lab.measure(batch, seed=0))     # doctest: +SKIP
        >>> campaign.pareto_front()                       # doctest: +SKIP
    """

    def __init__(
        self,
        config: CampaignConfig,
        *,
        settings: AcquisitionSettings | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        from poreml.optimize.acquisition import AcquisitionSettings, resolve_strategy

        if not isinstance(config, CampaignConfig):
            raise ConfigError(
                f"config: expected a CampaignConfig, got {type(config).__name__}. Fix: load "
                "it with CampaignConfig.from_toml(path)."
            )
        resolve_strategy(config.acquisition, len(config.objectives))
        self._config = config
        self._settings = settings or AcquisitionSettings()
        self._space: SearchSpace | None = None
        self._store: CampaignStore | None = None
        self.tracker = tracker
        now = _now()
        self._state: dict[str, Any] = {
            "type": STATE_TYPE,
            "schema_version": SCHEMA_VERSION,
            "revision": 0,
            "created_at": now,
            "updated_at": now,
            "config": config.to_dict(),
            "settings": self._settings.to_dict(),
            "rng": {"seed": config.seed, "sobol_drawn": 0},
            "next_candidate": 1,
            "observations": [],
            "pending": [],
            "rounds": [],
            "tells": [],
            "tracking": {"parent_run_id": None},
        }

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        directory: str | Path,
        config: CampaignConfig | str | Path,
        *,
        settings: AcquisitionSettings | None = None,
        tracker: Tracker | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Campaign:
        """Create a campaign in ``directory`` (made if missing).

        Args:
            directory: campaign directory; must not already hold a campaign.
            config: a config object, or the path of a campaign TOML file (copied verbatim
                to ``DIR/config.toml``).
            settings: acquisition-optimisation effort, stored with the campaign.
            tracker: tracker for the campaign's parent run and its round runs.
            lock_timeout: seconds to wait for another command working on the directory.

        Raises:
            CampaignError: ``directory`` already holds a campaign.
            ConfigError: the config is invalid (the message names the key).
        """
        if isinstance(config, CampaignConfig):
            text = config_to_toml(config)
        else:
            path = Path(config)
            config = CampaignConfig.from_toml(path)
            text = path.read_text(encoding="utf-8")
        campaign = cls(config, settings=settings, tracker=tracker)
        store = CampaignStore(directory, lock_timeout=lock_timeout)
        with store.locked():
            if store.exists():
                raise CampaignError(
                    f"{store.directory}: a campaign already exists here ({store.state_path}); "
                    "it is never overwritten. Fix: choose a new directory, or continue this "
                    "campaign with `poreml campaign suggest`."
                )
            store.write_config(text)
            campaign._store = store
            campaign._track_creation()
            store.write_state(campaign._state)
        return campaign

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        tracker: Tracker | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Campaign:
        """Open the campaign stored in ``directory``.

        Reading needs no lock (the state file is replaced atomically, so it is always
        complete); every change re-reads it under the lock.

        Raises:
            CampaignError: no campaign there, or an unreadable / incompatible state.
        """
        store = CampaignStore(directory, lock_timeout=lock_timeout)
        data = store.read_state()
        campaign = cls.from_dict(data, tracker=tracker)
        campaign._store = store
        return campaign

    def to_dict(self) -> dict[str, Any]:
        """The whole campaign as a JSON-ready dict (``"type": "CampaignState"``)."""
        return copy.deepcopy(self._state)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, tracker: Tracker | None = None) -> Campaign:
        """Rebuild a campaign from :meth:`to_dict` output (in memory, not bound to a directory).

        Raises:
            CampaignError: not a campaign state, or one of another schema version.
        """
        from poreml.optimize.acquisition import AcquisitionSettings

        if not isinstance(data, Mapping) or data.get("type") != STATE_TYPE:
            raise CampaignError(
                f'expected a campaign state dict with "type": "{STATE_TYPE}", got '
                f"{type(data).__name__}. Fix: pass the output of Campaign.to_dict()."
            )
        if data.get("schema_version") != SCHEMA_VERSION:
            raise CampaignError(
                f"campaign state schema version {data.get('schema_version')!r}; this poreml "
                f"reads version {SCHEMA_VERSION}."
            )
        config = CampaignConfig.from_dict(data["config"])
        settings = AcquisitionSettings.from_dict(data["settings"])
        campaign = cls(config, settings=settings, tracker=tracker)
        campaign._state = copy.deepcopy(dict(data))
        return campaign

    # -- read-only views ------------------------------------------------------------------------
    @property
    def config(self) -> CampaignConfig:
        """The campaign configuration."""
        return self._config

    @property
    def settings(self) -> AcquisitionSettings:
        """Acquisition-optimisation effort."""
        return self._settings

    @property
    def directory(self) -> Path | None:
        """The campaign directory, or None for an in-memory campaign."""
        return self._store.directory if self._store else None

    @property
    def space(self) -> SearchSpace:
        """The search space of the config (built on first use; imports torch)."""
        if self._space is None:
            self._space = self._config.search_space()
        return self._space

    @property
    def n_observations(self) -> int:
        """Candidates with at least one result (measured value or ``feasible`` flag)."""
        return len(self._state["observations"])

    @property
    def n_pending(self) -> int:
        """Proposed candidates still waiting for any result."""
        return len(self._state["pending"])

    @property
    def observations(self) -> pd.DataFrame:
        """Every observation, in the order first told.

        Returns:
            Columns ``candidate_id``, the design columns, the measured columns (NaN = not
            measured), ``feasible`` (True / False / None), ``source`` (``"proposal"`` or
            ``"outside"``) and ``round`` (proposal round, <NA> for outside data).
        """
        return _records_frame(self._state["observations"], with_results=True)

    @property
    def pending(self) -> pd.DataFrame:
        """Pending candidates: ``candidate_id``, design columns, ``round``."""
        return _records_frame(self._state["pending"], with_results=False)

    @property
    def history(self) -> pd.DataFrame:
        """One row per proposal round: ``round``, ``strategy``, ``reason``, ``n``,
        ``n_observations``, ``hypervolume`` (observed, when the round was asked), ``seconds``."""
        cols = ["round", "strategy", "reason", "n", "n_observations", "hypervolume", "seconds"]
        return pd.DataFrame(
            [{k: r.get(k) for k in cols} for r in self._state["rounds"]], columns=cols
        )

    @property
    def hypervolume_trace(self) -> pd.DataFrame:
        """Observed hypervolume after each :meth:`tell` that changed something:
        ``tell``, ``n_observations``, ``hypervolume``."""
        cols = ["tell", "n_observations", "hypervolume"]
        return pd.DataFrame(
            [{k: t.get(k) for k in cols} for t in self._state["tells"]], columns=cols
        )

    def export(self) -> pd.DataFrame:
        """Every observation: ``candidate_id``, design columns, measured columns, ``feasible``."""
        return self.observations[["candidate_id", *DESIGN_COLUMNS, *_RESULT_COLUMNS]]

    def pareto_front(self) -> pd.DataFrame:
        """The observed front (see :func:`poreml.optimize.pareto.observed_front`).

        Returns:
            ``candidate_id``, design columns, measured columns, ``feasible``, ``source``,
            ``round`` and ``beyond_reference``, best first objective first.
        """
        from poreml.optimize.pareto import observed_front

        return observed_front(
            self.observations, self._config.objectives, self._config.outcome_constraints
        )

    def hypervolume(self) -> float:
        """Hypervolume of the observed front against the thresholds (objectives' units)."""
        return _hypervolume(self._config, self._state["observations"])

    def status(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``poreml campaign status --json`` prints).

        Returns:
            ``name``, ``directory``, ``n_observations``, ``n_pending``, ``n_failed``,
            ``n_rounds``, ``next_strategy``, ``hypervolume``, ``reference_point`` (thresholds
            by objective), ``objectives``, ``outcome_constraints``, ``pareto_front`` (list of
            row objects) and ``pending_ids``.
        """
        front = self.pareto_front()
        obs = self._state["observations"]
        return {
            "name": self._config.name,
            "directory": str(self.directory) if self.directory else None,
            "n_observations": self.n_observations,
            "n_pending": self.n_pending,
            "n_failed": sum(1 for r in obs if r["feasible"] is False),
            "n_rounds": len(self._state["rounds"]),
            "next_strategy": self._next_strategy(),
            "hypervolume": self.hypervolume(),
            "reference_point": {o.name: o.threshold for o in self._config.objectives},
            "objectives": [o.to_dict() for o in self._config.objectives],
            "outcome_constraints": [c.to_dict() for c in self._config.outcome_constraints],
            "pareto_front": _json_rows(front),
            "pending_ids": [r["candidate_id"] for r in self._state["pending"]],
        }

    # -- ask ------------------------------------------------------------------------------------
    def ask(self, n: int | None = None) -> pd.DataFrame:
        """Propose ``n`` new candidates and record them as pending.

        Args:
            n: number of candidates (default: the config's ``batch_size``).

        Returns:
            ``candidate_id``, every design column in contract order and, for model-based
            proposals, ``predicted_<outcome>_mean`` / ``predicted_<outcome>_std`` for each
            campaign outcome (original units; the std is that of a new measurement, model
            uncertainty plus measurement noise) and ``predicted_feasible_probability`` when
            a feasibility model was used.

        Raises:
            ConfigError: ``n`` is not an integer in [1, 1000].
            OptimizationError: no proposal satisfying the parameter constraints was found.
            CampaignError: the campaign is locked by another command for too long.
        """
        n = self._config.batch_size if n is None else n
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= int(n) <= 1000:
            raise ConfigError(
                f"batch: expected an integer in [1, 1000], got {n!r}. Fix: ask for e.g. "
                f"{self._config.batch_size} candidates."
            )
        n = int(n)
        with self._transaction() as state, _torch_threads(self._settings.torch_threads):
            started = time.perf_counter()
            round_index = len(state["rounds"]) + 1
            seed = _round_seed(self._config.seed, round_index)
            proposal = self._propose(state, n, seed)
            frame = proposal.frame
            ids = _new_ids(state, n)
            frame.insert(0, "candidate_id", ids)
            hv = _hypervolume(self._config, state["observations"])
            for i, cid in enumerate(ids):
                row = frame.iloc[i]
                state["pending"].append(
                    {
                        "candidate_id": cid,
                        "round": round_index,
                        "design": _design_record(row),
                        "predicted": {
                            c: float(row[c])
                            for c in frame.columns
                            if c.startswith("predicted_") and math.isfinite(float(row[c]))
                        },
                    }
                )
            state["rounds"].append(
                {
                    "round": round_index,
                    "at": _now(),
                    "strategy": proposal.strategy,
                    "reason": proposal.reason,
                    "n": n,
                    "seed": seed,
                    "candidate_ids": ids,
                    "n_observations": len(state["observations"]),
                    "n_pending_before": len(state["pending"]) - n,
                    "hypervolume": hv,
                    "acquisition_values": [
                        v if math.isfinite(v) else None for v in proposal.acquisition_values
                    ],
                    "model": proposal.model_info,
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )
        self._after_ask(frame, round_index, proposal)
        return frame

    # -- tell -----------------------------------------------------------------------------------
    def tell(self, results: pd.DataFrame, *, source: str | None = None) -> TellSummary:
        """Record results.

        Args:
            results: one row per candidate: ``candidate_id`` and any subset of the measured
                columns and ``feasible`` (blank / NaN = not measured). Rows for ids the
                campaign does not know are outside data and must carry every design column.
                Design columns on known ids must match the proposal. ``retention_cycles``, if
                given, must be 500 where ``retention_pct`` is given; ``predicted_*`` and
                provenance columns are accepted and ignored.
            source: name of the input (e.g. the CSV path) for messages.

        Returns:
            A :class:`TellSummary`. Re-sending results already recorded changes nothing.

        Raises:
            DataValidationError: listing every bad cell (unknown columns, values outside the
                contract ranges, missing ids, outside data without all design columns, …).
            ConflictError: a value differs from the one already recorded for that id (the
                message names the id, column, recorded and new value of every conflict).
        """
        rows = self._validate_results(results, source)
        with self._transaction() as state:
            summary = _apply_results(state, rows, source)
            if summary.changed:
                state["tells"].append(
                    {
                        "tell": len(state["tells"]) + 1,
                        "at": _now(),
                        "source": source,
                        "new": list(summary.new),
                        "updated": list(summary.updated),
                        "n_observations": len(state["observations"]),
                        "hypervolume": _hypervolume(self._config, state["observations"]),
                    }
                )
            else:
                raise _NoChange(summary)
        if summary.changed:
            self._after_tell(summary)
        return summary

    # -- closed loop ----------------------------------------------------------------------------
    def run(
        self,
        oracle: Callable[[pd.DataFrame, int], pd.DataFrame],
        rounds: int,
        *,
        batch_size: int | None = None,
        on_round: Callable[[int, pd.DataFrame, TellSummary], None] | None = None,
    ) -> pd.DataFrame:
        """Closed loop: ``rounds`` times ask a batch, measure it with ``oracle``, tell.

        Args:
            oracle: ``oracle(candidates, round)`` returns results for the candidates
                (``candidate_id`` + measured columns + ``feasible``), e.g. a seeded
                :meth:`VirtualLab.measure`.
            rounds: number of rounds (initial space-filling rounds included).
            batch_size: candidates per round (default: the config's ``batch_size``).
            on_round: called after each round with its index, the results and the summary.

        Returns:
            :attr:`history` after the loop.
        """
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ConfigError(f"rounds: expected an integer >= 0, got {rounds!r}.")
        for _ in range(rounds):
            batch = self.ask(batch_size)
            k = len(self._state["rounds"])
            results = oracle(batch, k)
            summary = self.tell(results, source=f"oracle round {k}")
            if on_round is not None:
                on_round(k, results, summary)
        return self.history

    # -- model ----------------------------------------------------------------------------------
    def fit_model(self) -> CampaignModel:
        """Fit the campaign model on the current observations (what :meth:`ask` would use).

        Raises:
            OptimizationError: too few successful measurements to model every outcome.
        """
        from poreml.optimize.models import fit_campaign_model

        with _torch_threads(self._settings.torch_threads):
            return fit_campaign_model(
                self.observations,
                self.space,
                self._config.outcome_names,
                surrogate=self._config.surrogate,
                seed=_round_seed(self._config.seed, len(self._state["rounds"]) + 1),
                use_failed=self._settings.use_failed_measurements,
                feasibility_prior=self._settings.feasibility_prior,
            )

    def predicted_front(
        self, n: int | None = None, *, model: CampaignModel | None = None
    ) -> pd.DataFrame:
        """The model-predicted front over ``n`` Sobol designs (posterior means).

        Args:
            n: designs scored (default ``settings.predicted_front_points``).
            model: a fitted model (default: :meth:`fit_model`).

        Returns:
            Design columns and ``predicted_<output>_mean`` (see
            :func:`poreml.optimize.pareto.predicted_front`).
        """
        from poreml.optimize.pareto import predicted_front

        fitted = model or self.fit_model()
        with _torch_threads(self._settings.torch_threads):
            return predicted_front(
                fitted.model,
                self.space,
                self._config.objectives,
                self._config.outcome_constraints,
                outcome_names=fitted.outcome_names,
                feasibility_index=fitted.feasibility_index,
                n=n or self._settings.predicted_front_points,
                seed=self._config.seed,
            )

    # -- internals: transactions ----------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        """Lock, re-read the stored state, yield a working copy, write it back atomically.

        Nothing is written (and the in-memory state is unchanged) when the block raises.
        """
        if self._store is None:
            work = copy.deepcopy(self._state)
            try:
                yield work
            except _NoChange:
                return
            self._commit(work)
            return
        with self._store.locked():
            self._refresh()
            work = copy.deepcopy(self._state)
            try:
                yield work
            except _NoChange:
                return
            work["revision"] = int(work["revision"]) + 1
            work["updated_at"] = _now()
            self._store.write_state(work)
            self._state = work

    def _commit(self, work: dict[str, Any]) -> None:
        work["revision"] = int(work["revision"]) + 1
        work["updated_at"] = _now()
        self._state = work

    def _refresh(self) -> None:
        """Adopt the stored state when another command changed it."""
        assert self._store is not None
        data = self._store.read_state()
        if data != self._state:
            self._state = data

    # -- internals: proposals -------------------------------------------------------------------
    def _next_strategy(self) -> str:
        from poreml.optimize.acquisition import resolve_strategy

        if len(self._state["observations"]) < self._config.initial_points:
            return "sobol"
        return resolve_strategy(self._config.acquisition, len(self._config.objectives))

    def _propose(self, state: dict[str, Any], n: int, seed: int) -> _Proposal:
        obs = _records_frame(state["observations"], with_results=True)
        if len(obs) < self._config.initial_points:
            reason = f"{len(obs)} of {self._config.initial_points} initial observations"
            return self._sobol(state, n, reason)
        from gpytorch.utils.warnings import NumericalWarning

        from poreml.optimize.models import InsufficientDataError

        try:
            with warnings.catch_warnings():
                # Expected, harmless, and not actionable for a campaign user: variances rounded
                # up from -1e-12, and BoTorch's hint for ParEGO before any feasible observation.
                warnings.simplefilter("ignore", NumericalWarning)
                warnings.filterwarnings("ignore", message="When all training points are infeas")
                return self._model_based(state, obs, n, seed)
        except InsufficientDataError as err:
            return self._sobol(state, n, f"space-filling fallback: {err}")

    def _sobol(self, state: dict[str, Any], n: int, reason: str) -> _Proposal:
        import torch

        space = self.space
        drawn = int(state["rng"]["sobol_drawn"])
        X = space.sample_tensor(drawn + n, seed=int(state["rng"]["seed"]))[drawn:].clone()
        combos = space.fixed_features_list()
        if combos:
            gen = torch.Generator().manual_seed(_round_seed(int(state["rng"]["seed"]), drawn))
            picks = [(drawn + j) % len(combos) for j in range(n)]
            order = torch.randperm(n, generator=gen).tolist()
            for j, k in enumerate(order):
                for dim, code in combos[picks[k]].items():
                    X[j, dim] = code
        state["rng"]["sobol_drawn"] = drawn + n
        frame = self._finish(X)
        return _Proposal(frame, "sobol", reason, [], {})

    def _model_based(
        self, state: dict[str, Any], obs: pd.DataFrame, n: int, seed: int
    ) -> _Proposal:
        import torch

        from poreml.optimize.acquisition import (
            ProblemSpec,
            build_acquisition,
            optimize_acquisition,
            resolve_strategy,
        )
        from poreml.optimize.models import InsufficientDataError, fit_campaign_model
        from poreml.optimize.pareto import observed_front, pareto_mask, signed_objectives

        cfg = self._config
        space = self.space
        strategy = resolve_strategy(cfg.acquisition, len(cfg.objectives))
        t0 = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            fitted = fit_campaign_model(
                obs,
                space,
                cfg.outcome_names,
                surrogate=cfg.surrogate,
                seed=seed,
                use_failed=self._settings.use_failed_measurements,
                feasibility_prior=self._settings.feasibility_prior,
            )
        fit_seconds = time.perf_counter() - t0
        inside = space.contains(obs[list(DESIGN_COLUMNS)])
        if not inside.any():
            raise InsufficientDataError("no observation inside the search space yet")
        X_base = space.to_tensor(obs.loc[inside])
        made = obs["feasible"].map(lambda v: v is not False).to_numpy(dtype=bool)
        complete = obs[list(cfg.outcome_names)].notna().all(axis=1).to_numpy()
        incomplete = inside & made & ~complete
        pend = _records_frame(state["pending"], with_results=False)
        parts = []
        if len(pend):
            pin = space.contains(pend[list(DESIGN_COLUMNS)])
            if pin.any():
                parts.append(space.to_tensor(pend.loc[pin]))
        if incomplete.any():
            parts.append(space.to_tensor(obs.loc[incomplete]))
        X_pending = torch.cat(parts) if parts else None
        front = observed_front(obs.loc[inside], cfg.objectives, cfg.outcome_constraints)
        if len(front) == 0:  # no eligible point yet: refine around the made, objective front
            cand = obs.loc[inside & made & complete]
            if len(cand):
                mask = pareto_mask(signed_objectives(cand, cfg.objectives))
                front = cand.loc[mask]
        X_front = space.to_tensor(front) if len(front) else None
        spec = ProblemSpec(
            outcome_names=fitted.outcome_names,
            objectives=cfg.objectives,
            outcome_constraints=cfg.outcome_constraints,
            scales=fitted.scales,
            feasibility_index=fitted.feasibility_index,
        )

        def make_acqf(pending: Tensor | None, i: int) -> Any:
            return build_acquisition(
                strategy, fitted.model, spec, X_base, pending, self._settings, seed + 31 * i
            )

        t1 = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            X, values = optimize_acquisition(
                make_acqf,
                space,
                n,
                self._settings,
                seed=seed,
                X_pending=X_pending,
                X_front=X_front,
            )
        frame = self._finish(X)
        mean, std = fitted.predict(space.to_tensor(frame), observation_noise=True)
        for j, name in enumerate(fitted.outcome_names):
            if name == "feasible":
                frame["predicted_feasible_probability"] = mean[:, j].clamp(0, 1).numpy()
                continue
            frame[f"predicted_{name}_mean"] = mean[:, j].numpy()
            frame[f"predicted_{name}_std"] = std[:, j].numpy()
        info = {
            "sources": fitted.sources,
            "outputs": list(fitted.outcome_names),
            "diagnostics": {k: v for k, v in fitted.diagnostics.items() if math.isfinite(v)},
            "calibration": _calibration(state["observations"], cfg.outcome_names),
            "fit_seconds": round(fit_seconds, 3),
            "optimize_seconds": round(time.perf_counter() - t1, 3),
            "n_baseline": int(X_base.shape[0]),
            "n_pending": 0 if X_pending is None else int(X_pending.shape[0]),
        }
        return _Proposal(
            frame,
            strategy,
            f"model-based ({strategy})",
            [float(v) for v in values],
            info,
            fitted,
        )

    def _finish(self, X: Tensor) -> pd.DataFrame:
        """Decode proposals, round them for readability and check every constraint."""
        space = self.space
        exact = space.from_tensor(X)
        rounded = exact.copy()
        for name in CONTINUOUS_DESIGN_COLUMNS:
            rounded[name] = [_round_sig(v, SIGNIFICANT_DIGITS) for v in exact[name]]
        ok_rounded = space.contains(rounded, atol=0.0)
        frame = rounded.where(pd.DataFrame({c: ok_rounded for c in rounded.columns}), exact)
        frame = frame.astype({c: "float64" for c in CONTINUOUS_DESIGN_COLUMNS})
        ok = space.contains(frame, atol=1e-9)
        if not ok.all():
            bad = frame.loc[~ok]
            raise OptimizationError(
                f"internal check failed: {int((~ok).sum())} proposal(s) break the parameter "
                f"bounds or constraints:\n{bad.to_string()}\nPlease report this; no candidate "
                "was recorded."
            )
        return frame.reset_index(drop=True)

    # -- internals: validation ------------------------------------------------------------------
    def _validate_results(self, results: pd.DataFrame, source: str | None) -> pd.DataFrame:
        if not isinstance(results, pd.DataFrame):
            raise DataValidationError(
                [Problem(None, None, type(results).__name__, "a table of results")], source
            )
        allowed_extra = [c for c in results.columns if str(c).startswith("predicted_")]
        frame = validate_table(results, source=source, allow_columns=allowed_extra)
        problems: list[Problem] = []
        accepted = {
            "candidate_id",
            *DESIGN_COLUMNS,
            *_RESULT_COLUMNS,
            "retention_cycles",
            *PROVENANCE_COLUMNS,
            *allowed_extra,
        }
        for name in frame.columns:
            if name not in accepted:
                problems.append(
                    Problem(
                        None,
                        name,
                        name,
                        "candidate_id, design, measured, feasible or retention_cycles columns "
                        f"(a {COLUMNS[name].kind} column has no place in campaign results)",
                    )
                )
        if "candidate_id" not in frame.columns:
            problems.append(
                Problem(
                    None,
                    "candidate_id",
                    "<missing column>",
                    "a candidate_id column naming each candidate",
                )
            )
            raise DataValidationError(problems, source)
        if len(frame) == 0:
            problems.append(Problem(None, None, "0 rows", "at least one result row"))
        known = {r["candidate_id"] for r in self._state["observations"]} | {
            r["candidate_id"] for r in self._state["pending"]
        }
        for i, cid in enumerate(frame["candidate_id"].tolist()):
            row = i + 1
            if cid is None:
                problems.append(Problem(row, "candidate_id", "blank", "a candidate id"))
                continue
            if cid in known:
                continue
            # outside data: every design column, and at least one result
            for name in DESIGN_COLUMNS:
                if name not in frame.columns or _blank(frame.at[i, name]):
                    problems.append(
                        Problem(
                            row,
                            name,
                            "blank" if name in frame.columns else "<missing column>",
                            f"a value: {cid!r} is not a candidate of this campaign, so the row is "
                            "outside data and needs every design column",
                        )
                    )
            if not any(c in frame.columns and not _blank(frame.at[i, c]) for c in _RESULT_COLUMNS):
                problems.append(
                    Problem(row, None, "no result", "at least one measured value or feasible flag")
                )
        if "retention_cycles" in frame.columns and "retention_pct" in frame.columns:
            for i in range(len(frame)):
                cyc = frame.at[i, "retention_cycles"]
                if (
                    not _blank(cyc)
                    and not _blank(frame.at[i, "retention_pct"])
                    and float(cyc) != DEFAULT_RETENTION_CYCLES
                ):
                    problems.append(
                        Problem(
                            i + 1,
                            "retention_cycles",
                            cyc,
                            f"{DEFAULT_RETENTION_CYCLES} (campaign retention_pct values refer "
                            f"to {DEFAULT_RETENTION_CYCLES} cycles; leave retention_pct blank "
                            "otherwise)",
                        )
                    )
        if problems:
            raise DataValidationError(problems, source)
        return frame

    # -- internals: side channels ---------------------------------------------------------------
    def _track_creation(self) -> None:
        if self.tracker is None:
            return
        try:
            from poreml.tracking.base import flatten_params

            with self.tracker.start_run(
                f"campaign-{self._config.name}",
                tags={"poreml.kind": "campaign", "poreml.campaign_dir": str(self.directory)},
            ) as run:
                self.tracker.log_params(
                    flatten_params(
                        {
                            "config": _config_params(self._config),
                            "settings": self._settings.to_dict(),
                        }
                    )
                )
                run_id = getattr(getattr(run, "info", None), "run_id", None)
            self._state["tracking"]["parent_run_id"] = run_id
        except Exception as err:  # tracking is a side channel
            warnings.warn(
                f"campaign tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=3,
            )

    def _child_tags(self, kind: str) -> dict[str, str]:
        tags = {"poreml.kind": kind, "poreml.campaign": self._config.name}
        parent = self._state["tracking"].get("parent_run_id")
        if parent:
            tags["mlflow.parentRunId"] = parent
        if self.directory:
            tags["poreml.campaign_dir"] = str(self.directory)
        return tags

    def _after_ask(self, frame: pd.DataFrame, round_index: int, proposal: _Proposal) -> None:
        if self._store is not None:
            try:
                from poreml.data.io import write_csv

                write_csv(frame, self._store.rounds_dir / f"round_{round_index:03d}.csv")
            except OSError as err:
                warnings.warn(
                    f"could not write the round table ({err})", RuntimeWarning, stacklevel=3
                )
        if self.tracker is None:
            return
        try:
            record = self._state["rounds"][-1]
            with self.tracker.start_run(
                f"round-{round_index:03d}", tags=self._child_tags("campaign-round")
            ):
                self.tracker.log_params(
                    {
                        "round": round_index,
                        "strategy": proposal.strategy,
                        "n": len(frame),
                        "reason": proposal.reason,
                    }
                )
                metrics = {
                    "hypervolume": record["hypervolume"],
                    "n_observations": record["n_observations"],
                    "seconds": record["seconds"],
                }
                for key, value in (proposal.model_info.get("diagnostics") or {}).items():
                    metrics[f"model.{key}"] = value
                for key, value in (proposal.model_info.get("calibration") or {}).items():
                    metrics[f"calibration.{key}"] = value
                self.tracker.log_metrics(metrics, step=round_index)
                self.tracker.log_table(frame, "proposals.csv")
                if proposal.model is not None:
                    predicted = self.predicted_front(model=proposal.model)
                    self.tracker.log_metrics(
                        {"predicted_front_size": len(predicted)}, step=round_index
                    )
                    self.tracker.log_table(predicted, "predicted_front.csv")
                self._log_reports()
        except Exception as err:
            warnings.warn(
                f"round tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=3,
            )

    def _after_tell(self, summary: TellSummary) -> None:
        if self._store is not None:
            try:
                from poreml.optimize.report import write_reports

                write_reports(self, self._store.reports_dir)
            except Exception as err:
                warnings.warn(f"could not write the reports ({err})", RuntimeWarning, stacklevel=3)
        if self.tracker is None:
            return
        try:
            record = self._state["tells"][-1]
            with self.tracker.start_run(
                f"observe-{record['tell']:03d}", tags=self._child_tags("campaign-observe")
            ):
                self.tracker.log_params(
                    {
                        "new": len(summary.new),
                        "updated": len(summary.updated),
                        "outside": len(summary.outside),
                    }
                )
                self.tracker.log_metrics(
                    {
                        "hypervolume": record["hypervolume"],
                        "n_observations": record["n_observations"],
                    },
                    step=record["tell"],
                )
                ids = set(summary.new) | set(summary.updated)
                obs = self.export()
                self.tracker.log_table(obs[obs["candidate_id"].isin(ids)], "results.csv")
                self._log_reports()
        except Exception as err:
            warnings.warn(
                f"observe tracking failed ({err}); the campaign is unaffected",
                RuntimeWarning,
                stacklevel=3,
            )

    def _log_reports(self) -> None:
        """Plots and the state JSON into the open tracker run."""
        from poreml.optimize.report import hypervolume_figure, pareto_figure

        assert self.tracker is not None
        self.tracker.log_figure(pareto_figure(self), "pareto.png")
        self.tracker.log_figure(hypervolume_figure(self), "hypervolume.png")
        if self._store is not None:
            self.tracker.log_artifact(self._store.state_path)


class _NoChange(Exception):
    """Raised inside a transaction to leave the state untouched (carries the summary)."""

    def __init__(self, summary: TellSummary) -> None:
        super().__init__("no change")
        self.summary = summary


@dataclass
class _Proposal:
    frame: pd.DataFrame
    strategy: str
    reason: str
    acquisition_values: list[float]
    model_info: dict[str, Any]
    model: CampaignModel | None = None


# -- helpers ---------------------------------------------------------------------------------------
@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (0 = leave as is), then restore.

    GP fits and acquisition evaluations here involve small matrices, where thread start-up
    and contention cost more than they save; one thread is fastest on a busy machine.
    """
    if n <= 0:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _round_seed(seed: int, k: int) -> int:
    return int((int(seed) * 1_000_003 + int(k)) % (2**31 - 1))


def _round_sig(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _design_record(row: pd.Series) -> dict[str, Any]:
    return {
        name: (str(row[name]) if name == "route" else float(row[name])) for name in DESIGN_COLUMNS
    }


def _new_ids(state: dict[str, Any], n: int) -> list[str]:
    used = {r["candidate_id"] for r in state["observations"]} | {
        r["candidate_id"] for r in state["pending"]
    }
    ids: list[str] = []
    k = int(state["next_candidate"])
    while len(ids) < n:
        cid = f"{ID_PREFIX}{k:04d}"
        k += 1
        if cid not in used:
            ids.append(cid)
    state["next_candidate"] = k
    return ids


def _records_frame(records: Sequence[Mapping[str, Any]], *, with_results: bool) -> pd.DataFrame:
    cols = ["candidate_id", *DESIGN_COLUMNS]
    if with_results:
        cols += [*_RESULT_COLUMNS, *_META_COLUMNS]
    else:
        cols += ["round"]
    rows = []
    for r in records:
        row: dict[str, Any] = {"candidate_id": r["candidate_id"], **r["design"]}
        if with_results:
            row.update({k: (np.nan if v is None else v) for k, v in r["measured"].items()})
            row["feasible"] = r.get("feasible")
            row["source"] = r.get("source")
        row["round"] = r.get("round")
        rows.append(row)
    frame = pd.DataFrame(rows, columns=cols)
    frame = frame.astype({c: "float64" for c in CONTINUOUS_DESIGN_COLUMNS})
    if with_results:
        frame = frame.astype({c: "float64" for c in MEASURED_COLUMNS})
        frame["feasible"] = frame["feasible"].astype(object).where(frame["feasible"].notna(), None)
    frame["round"] = frame["round"].astype("Int64")
    return frame


def _hypervolume(config: CampaignConfig, records: Sequence[Mapping[str, Any]]) -> float:
    from poreml.optimize.pareto import observed_hypervolume

    if not records:
        return 0.0
    return observed_hypervolume(
        _records_frame(records, with_results=True), config.objectives, config.outcome_constraints
    )


def _same(old: float, new: float, rtol: float) -> bool:
    return math.isclose(old, new, rel_tol=rtol, abs_tol=1e-12)


def _apply_results(state: dict[str, Any], frame: pd.DataFrame, source: str | None) -> TellSummary:
    """Merge validated result rows into ``state`` (in place); raise on conflicts."""
    observed = {r["candidate_id"]: r for r in state["observations"]}
    pending = {r["candidate_id"]: r for r in state["pending"]}
    conflicts: list[str] = []
    new: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    outside: list[str] = []
    result_cols = [c for c in _RESULT_COLUMNS if c in frame.columns]
    design_cols = [c for c in DESIGN_COLUMNS if c in frame.columns]
    done_pending: set[str] = set()
    for i in range(len(frame)):
        cid = str(frame.at[i, "candidate_id"])
        values = {c: frame.at[i, c] for c in result_cols if not _blank(frame.at[i, c])}
        record = observed.get(cid)
        prop = pending.get(cid)
        design_ref = (record or prop or {}).get("design")
        if design_ref is not None:
            for c in design_cols:
                v = frame.at[i, c]
                if _blank(v):
                    continue
                old = design_ref[c]
                same = old == v if c == "route" else _same(float(old), float(v), DESIGN_RTOL)
                if not same:
                    conflicts.append(
                        f"candidate {cid!r}, column {c!r}: proposed {old!r}, new {v!r}"
                    )
        if record is None and prop is None:  # outside data
            record = {
                "candidate_id": cid,
                "source": "outside",
                "round": None,
                "design": {
                    c: (str(frame.at[i, c]) if c == "route" else float(frame.at[i, c]))
                    for c in DESIGN_COLUMNS
                },
                "measured": {c: None for c in MEASURED_COLUMNS},
                "feasible": None,
                "predicted": {},
            }
            _merge_values(record, values, cid, conflicts)
            observed[cid] = record
            state["observations"].append(record)
            new.append(cid)
            outside.append(cid)
            continue
        if record is None:  # a pending proposal
            if not values:
                unchanged.append(cid)
                continue
            assert prop is not None
            record = {
                "candidate_id": cid,
                "source": "proposal",
                "round": prop["round"],
                "design": dict(prop["design"]),
                "measured": {c: None for c in MEASURED_COLUMNS},
                "feasible": None,
                "predicted": dict(prop.get("predicted") or {}),
            }
            _merge_values(record, values, cid, conflicts)
            observed[cid] = record
            state["observations"].append(record)
            done_pending.add(cid)
            new.append(cid)
            continue
        if _merge_values(record, values, cid, conflicts):
            updated.append(cid)
        else:
            unchanged.append(cid)
    if conflicts:
        raise ConflictError(
            (f"{source}: " if source else "")
            + f"{len(conflicts)} value(s) contradict results already recorded:\n  - "
            + "\n  - ".join(conflicts)
            + "\nNothing was recorded. Fix: correct the file, or give the re-measured material "
            "a new candidate_id (outside data with every design column)."
        )
    state["pending"] = [r for r in state["pending"] if r["candidate_id"] not in done_pending]
    for r in state["observations"]:
        r.setdefault("predicted", {})
    return TellSummary(tuple(new), tuple(updated), tuple(unchanged), tuple(outside))


def _merge_values(
    record: dict[str, Any], values: Mapping[str, Any], cid: str, conflicts: list[str]
) -> bool:
    """Fill ``record`` with ``values``; record conflicts; return whether anything was added."""
    changed = False
    for c, v in values.items():
        if c == "feasible":
            old = record["feasible"]
            new = bool(v)
            if old is None:
                record["feasible"] = new
                changed = True
            elif old != new:
                conflicts.append(
                    f"candidate {cid!r}, column 'feasible': recorded {old!r}, new {new!r}"
                )
            continue
        new_f = float(v)
        old = record["measured"].get(c)
        if old is None:
            record["measured"][c] = new_f
            changed = True
        elif not _same(float(old), new_f, VALUE_RTOL):
            conflicts.append(f"candidate {cid!r}, column {c!r}: recorded {old!r}, new {new_f!r}")
    return changed


def _calibration(records: Sequence[Mapping[str, Any]], outcomes: Sequence[str]) -> dict[str, float]:
    """How well earlier model predictions matched what was then measured (out of sample).

    Per outcome over observations that were proposed with predictions: ``n``, ``rmse`` and
    ``coverage90`` (share inside mean ± 1.645 std).
    """
    out: dict[str, float] = {}
    for name in outcomes:
        errs, inside = [], []
        for r in records:
            pred = r.get("predicted") or {}
            mean = pred.get(f"predicted_{name}_mean")
            std = pred.get(f"predicted_{name}_std")
            y = r["measured"].get(name)
            if mean is None or y is None or r.get("feasible") is False:
                continue
            errs.append(y - mean)
            if std is not None:
                inside.append(abs(y - mean) <= 1.645 * max(std, 1e-12))
        if errs:
            out[f"{name}.n"] = float(len(errs))
            out[f"{name}.rmse"] = float(np.sqrt(np.mean(np.square(errs))))
            if inside:
                out[f"{name}.coverage90"] = float(np.mean(inside))
    return out


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for rec in frame.to_dict("records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, np.generic):
                v = v.item()
            if v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
                v = None
            clean[str(k)] = v
        rows.append(clean)
    return rows


def _config_params(config: CampaignConfig) -> dict[str, Any]:
    data = config.to_dict()
    return {
        "name": data["name"],
        "batch_size": data["batch_size"],
        "initial_points": data["initial_points"],
        "seed": data["seed"],
        "surrogate": data["surrogate"],
        "acquisition": data["acquisition"],
        "objectives": ", ".join(
            f"{o.name} {o.direction} (ref {o.threshold:g})" for o in config.objectives
        ),
        "outcome_constraints": ", ".join(f"{c.name} {c}" for c in config.outcome_constraints),
        "parameter_constraints": "; ".join(data["parameter_constraints"]),
    }


def config_to_toml(config: CampaignConfig) -> str:
    """The campaign config as TOML text (CONTRACT.md §3 layout); parses back to ``config``.

    Args:
        config: a validated config.

    Returns:
        TOML text.
    """
    import json

    from poreml.design.parameters import (
        CategoricalParameter,
        ContinuousParameter,
        FixedParameter,
    )

    def lit(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        return str(v)

    lines = [
        "[campaign]",
        f"name = {lit(config.name)}",
        f"batch_size = {config.batch_size}",
        f"initial_points = {config.initial_points}",
        f"seed = {config.seed}",
        f"surrogate = {lit(config.surrogate)}",
        f"acquisition = {lit(config.acquisition)}",
        "",
    ]
    for p in config.parameters:
        lines.append(f"[parameters.{p.name}]")
        if isinstance(p, ContinuousParameter):
            lines.append(f"bounds = {lit(list(p.bounds))}")
            lines.append(f"scale = {lit(p.scale)}")
        elif isinstance(p, CategoricalParameter):
            lines.append(f"values = {lit(list(p.values))}")
        elif isinstance(p, FixedParameter):
            lines.append(f"fixed = {lit(p.value)}")
        lines.append("")
    for o in config.objectives:
        lines += [
            f"[objectives.{o.name}]",
            f"direction = {lit(o.direction)}",
            f"threshold = {lit(o.threshold)}",
            "",
        ]
    if config.outcome_constraints:
        lines.append("[outcome_constraints]")
        lines += [
            f"{c.name} = {lit(str(c.op) + ' ' + repr(c.bound))}" for c in config.outcome_constraints
        ]
        lines.append("")
    for c in config.parameter_constraints:
        lines += ["[[parameter_constraints]]", f"expr = {lit(c.text or str(c))}", ""]
    return "\n".join(lines)
