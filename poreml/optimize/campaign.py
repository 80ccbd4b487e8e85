"""The optimisation campaign: the only mutable domain object of poreml.

A :class:`Campaign` takes and returns DataFrames with contract columns (CONTRACT.md §1):

* :meth:`Campaign.ask` proposes candidates (``candidate_id`` + every design column, plus
  ``predicted_<outcome>_mean`` / ``_std`` when a model proposed them) and records them as
  pending;
* :meth:`Campaign.tell` records results: ``candidate_id`` + any subset of the measured columns
  (blank = not measured) and ``feasible``; rows for unknown ids are outside data and must carry
  every design column.

Proposals are space-filling Sobol points until ``initial_points`` observations exist, then
model-based (:mod:`poreml.optimize.proposals`); failed syntheses (``feasible = false``) train a
feasibility model instead of the outcome surrogates.

Persistence. The campaign's :class:`~poreml.optimize.state.CampaignState` lives in a
:class:`~poreml.optimize.store.CampaignStore`: a directory (:class:`FolderStore`, made by
:meth:`Campaign.create`) or memory. Every change is a store transaction: the stored state is
re-read under the lock, changed, and committed atomically, so commands never interleave, an
interrupted command leaves the state as it was before or after, and several processes can work
on one campaign in turn. :meth:`to_dict` / :meth:`from_dict` round-trip the whole campaign
losslessly through JSON.

Side channels. After each committed change the campaign calls its
:class:`~poreml.optimize.events.CampaignListener` hooks (experiment tracking, the plots and
round tables of a campaign directory); a failing listener only warns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poreml.data.schema import DESIGN_COLUMNS
from poreml.design.config import CampaignConfig
from poreml.exceptions import CampaignError, ConfigError
from poreml.optimize.events import CampaignListener, notify
from poreml.optimize.model_check import model_check
from poreml.optimize.pareto import observed_front, observed_hypervolume
from poreml.optimize.prior_check import route_report
from poreml.optimize.results import TellSummary, merge_results, validate_results
from poreml.optimize.state import (
    RESULT_COLUMNS,
    CampaignState,
    Observation,
    RoundRecord,
    TellRecord,
    finite_or_none,
    now,
    observations_frame,
    round_seed,
)
from poreml.optimize.store import DEFAULT_LOCK_TIMEOUT, CampaignStore, FolderStore, MemoryStore
from poreml.optimize.strategy import AcquisitionSettings, resolve_strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from poreml.design.search_space import SearchSpace
    from poreml.optimize.models import CampaignModel

__all__ = ["Campaign"]


class Campaign:
    """A multi-objective Bayesian-optimisation campaign (module doc).

    Build one with :meth:`create` (persisted in a store), :meth:`load` (an existing store) or
    directly (in memory, nothing written).

    Args:
        config: the campaign configuration.
        settings: acquisition-optimisation effort (default :class:`AcquisitionSettings()`).
        listeners: side channels told about every change (e.g. the MLflow campaign runs of
            :mod:`poreml.tracking.campaign_runs`); failures in them only warn.

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
        listeners: Iterable[CampaignListener] = (),
    ) -> None:
        if not isinstance(config, CampaignConfig):
            raise ConfigError(
                f"config: expected a CampaignConfig, got {type(config).__name__}. Fix: load "
                "it with CampaignConfig.from_toml(path)."
            )
        resolve_strategy(config.acquisition, len(config.objectives))
        self._config = config
        self._settings = settings or AcquisitionSettings()
        self._space: SearchSpace | None = None
        self.listeners: list[CampaignListener] = list(listeners)
        self._state = CampaignState(
            config=config.to_dict(), settings=self._settings.to_dict(), seed=config.seed
        )
        self._store: CampaignStore = MemoryStore(self._state, config.to_toml())

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        store: CampaignStore | str | Path,
        config: CampaignConfig | str | Path,
        *,
        settings: AcquisitionSettings | None = None,
        listeners: Iterable[CampaignListener] = (),
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Campaign:
        """Create a campaign in ``store`` (a directory is made if missing).

        Args:
            store: a store, or a campaign directory; must not already hold a campaign.
            config: a config object, or the path of a campaign TOML file (copied verbatim
                to ``DIR/config.toml``).
            settings: acquisition-optimisation effort, stored with the campaign.
            listeners: side channels; their :meth:`~CampaignListener.created` notes (e.g.
                the tracking parent run) are stored with the campaign.
            lock_timeout: seconds to wait for another command working on the directory.

        Raises:
            CampaignError: the store already holds a campaign.
            ConfigError: the config is invalid (the message names the key).
        """
        if isinstance(config, CampaignConfig):
            text = config.to_toml()
        else:
            path = Path(config)
            config = CampaignConfig.from_toml(path)
            text = path.read_text(encoding="utf-8")
        campaign = cls(config, settings=settings, listeners=listeners)
        campaign._bind(_as_store(store, lock_timeout))
        with campaign._store.create(text, campaign._state.copy()) as state:
            campaign._state = state
            for notes in notify(campaign.listeners, "created", lambda x: x.created(campaign)):
                state.tracking.update(notes or {})
        return campaign

    @classmethod
    def load(
        cls,
        store: CampaignStore | str | Path,
        *,
        listeners: Iterable[CampaignListener] = (),
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> Campaign:
        """Open the campaign kept in ``store`` (a store or a campaign directory).

        Reading needs no lock (a folder's state file is replaced atomically, so it is always
        complete); every change re-reads it under the lock.

        Raises:
            CampaignError: no campaign there, or an unreadable / incompatible state.
        """
        bound = _as_store(store, lock_timeout)
        campaign = cls._from_state(bound.load_state(), listeners)
        campaign._bind(bound)
        return campaign

    def to_dict(self) -> dict[str, Any]:
        """The whole campaign as a JSON-ready dict (``"type": "CampaignState"``)."""
        return self._state.to_dict()

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, listeners: Iterable[CampaignListener] = ()
    ) -> Campaign:
        """Rebuild a campaign from :meth:`to_dict` output (in memory, not bound to a directory).

        Raises:
            CampaignError: not a campaign state, or one of another schema version.
        """
        return cls._from_state(CampaignState.from_dict(data), listeners)

    @classmethod
    def _from_state(cls, state: CampaignState, listeners: Iterable[CampaignListener]) -> Campaign:
        config = CampaignConfig.from_dict(state.config)
        settings = AcquisitionSettings.from_dict(state.settings)
        campaign = cls(config, settings=settings, listeners=listeners)
        campaign._state = state
        campaign._store = MemoryStore(state, config.to_toml())
        return campaign

    def _bind(self, store: CampaignStore) -> None:
        """Keep the campaign in ``store``; a store with a reports folder gets its plots."""
        self._store = store
        if store.reports_dir is not None or store.rounds_dir is not None:
            # matplotlib and torch load with the reports, not with this module
            from poreml.optimize.report import ReportWriter

            self.listeners.insert(0, ReportWriter(store.reports_dir, store.rounds_dir))

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
    def store(self) -> CampaignStore:
        """Where the campaign is kept."""
        return self._store

    @property
    def directory(self) -> Path | None:
        """The campaign directory, or None for an in-memory campaign."""
        return self._store.directory

    @property
    def short_name(self) -> str | None:
        """What people call the campaign: its folder or database name (None in memory)."""
        return self._store.short_name

    @property
    def tracking(self) -> Mapping[str, Any]:
        """What side channels noted at creation (e.g. the tracking ``parent_run_id``)."""
        return dict(self._state.tracking)

    @property
    def space(self) -> SearchSpace:
        """The search space of the config (built on first use; imports torch)."""
        if self._space is None:
            self._space = self._config.search_space()
        return self._space

    @property
    def n_observations(self) -> int:
        """Candidates with at least one result (measured value or ``feasible`` flag)."""
        return len(self._state.observations)

    @property
    def n_pending(self) -> int:
        """Proposed candidates still waiting for any result."""
        return len(self._state.pending)

    @property
    def observations(self) -> pd.DataFrame:
        """Every observation, in the order first told.

        Returns:
            Columns ``candidate_id``, the design columns, the measured columns (NaN = not
            measured), ``feasible`` (True / False / None), ``source`` (``"proposal"`` or
            ``"outside"``) and ``round`` (proposal round, <NA> for outside data).
        """
        return self._state.observations_frame()

    @property
    def pending(self) -> pd.DataFrame:
        """Pending candidates: ``candidate_id``, design columns, ``round``."""
        return self._state.pending_frame()

    @property
    def history(self) -> pd.DataFrame:
        """One row per proposal round: ``round``, ``strategy``, ``reason``, ``n``,
        ``n_observations``, ``hypervolume`` (observed, when the round was asked), ``seconds``."""
        return self._state.history_frame()

    @property
    def hypervolume_trace(self) -> pd.DataFrame:
        """Observed hypervolume after each :meth:`tell` that changed something:
        ``tell``, ``n_observations``, ``hypervolume``."""
        return self._state.hypervolume_trace()

    def export(self) -> pd.DataFrame:
        """Every observation: ``candidate_id``, design columns, measured columns, ``feasible``."""
        return self.observations[["candidate_id", *DESIGN_COLUMNS, *RESULT_COLUMNS]]

    def pareto_front(self) -> pd.DataFrame:
        """The observed front (see :func:`poreml.optimize.pareto.observed_front`).

        Returns:
            ``candidate_id``, design columns, measured columns, ``feasible``, ``source``,
            ``round`` and ``beyond_reference``, best first objective first.
        """
        return observed_front(
            self.observations, self._config.objectives, self._config.outcome_constraints
        )

    def hypervolume(self) -> float:
        """Hypervolume of the observed front against the thresholds (objectives' units)."""
        return _hypervolume(self._config, self._state.observations)

    def status(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``poreml campaign status --json`` prints).

        Returns:
            ``name``, ``directory``, ``n_observations``, ``n_pending``, ``n_failed``,
            ``n_rounds``, ``next_strategy``, ``hypervolume``, ``reference_point`` (thresholds
            by objective), ``objectives``, ``outcome_constraints``, ``pareto_front`` (list of
            row objects), ``pending_ids``, ``cancelled_ids`` and ``routes`` (per synthesis
            route: designs tried and how well the virtual-lab prior has matched them,
            :func:`~poreml.optimize.prior_check.route_report`), ``physics_calibration``
            (:meth:`physics_calibration`) and ``model_check`` (per outcome:
            the model's out-of-sample RMSE and 90 % coverage so far and the widening of its
            uncertainty the next proposal uses, :func:`~poreml.optimize.model_check.
            model_check`).
        """
        front = self.pareto_front()
        obs = self._state.observations
        if len(obs) < self._config.initial_points:
            next_strategy = "sobol"
        else:
            next_strategy = resolve_strategy(self._config.acquisition, len(self._config.objectives))
        return {
            "name": self._config.name,
            "directory": str(self.directory) if self.directory else None,
            "n_observations": self.n_observations,
            "n_pending": self.n_pending,
            "n_failed": sum(1 for r in obs if r.feasible is False),
            "n_rounds": len(self._state.rounds),
            "next_strategy": next_strategy,
            "hypervolume": self.hypervolume(),
            "reference_point": {o.name: o.threshold for o in self._config.objectives},
            "objectives": [o.to_dict() for o in self._config.objectives],
            "outcome_constraints": [c.to_dict() for c in self._config.outcome_constraints],
            "pareto_front": _json_rows(front),
            "pending_ids": [r.candidate_id for r in self._state.pending],
            "cancelled_ids": [r.candidate_id for r in self._state.cancelled],
            "routes": self.prior_check(),
            "physics_calibration": self.physics_calibration(),
            "model_check": model_check(
                self._state.observations,
                self._config.outcome_names,
                widen=self._settings.widen_uncertainty,
            ),
        }

    def physics_calibration(self) -> dict[str, Any] | None:
        """What the latest model-based proposal's model learned of the physics constants
        (per route the constants it moved, and the misfit before and after; campaign setting
        ``calibrate_prior``), or None when no proposal calibrated them."""
        for record in reversed(self._state.rounds):
            if record.model:
                return record.model.get("physics_calibration")
        return None

    def prior_check(self) -> list[dict[str, Any]]:
        """Per synthesis route: designs tried, made, failed, and how well the virtual-lab
        prior has matched the lab there (:func:`~poreml.optimize.prior_check.route_report`)."""
        return route_report(self.observations, self._config.outcome_names)

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
        from poreml.optimize.acquisition import torch_threads  # imports torch
        from poreml.optimize.proposals import propose

        n = self._config.batch_size if n is None else n
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= int(n) <= 1000:
            raise ConfigError(
                f"batch: expected an integer in [1, 1000], got {n!r}. Fix: ask for e.g. "
                f"{self._config.batch_size} candidates."
            )
        n = int(n)
        with self._store.transaction() as state, torch_threads(self._settings.torch_threads):
            started = time.perf_counter()
            round_index = len(state.rounds) + 1
            seed = round_seed(self._config.seed, round_index)
            proposal = propose(state, self._config, self.space, self._settings, n, seed)
            frame = proposal.frame
            ids = state.new_ids(n)
            frame.insert(0, "candidate_id", ids)
            hv = _hypervolume(self._config, state.observations)
            state.add_pending(frame, round_index)
            record = RoundRecord(
                round=round_index,
                at=now(),
                strategy=proposal.strategy,
                reason=proposal.reason,
                n=n,
                seed=seed,
                candidate_ids=ids,
                n_observations=len(state.observations),
                n_pending_before=len(state.pending) - n,
                hypervolume=hv,
                acquisition_values=[finite_or_none(v) for v in proposal.acquisition_values],
                model=proposal.model_info,
                seconds=round(time.perf_counter() - started, 3),
            )
            state.rounds.append(record)
        self._state = state
        notify(self.listeners, "asked", lambda x: x.asked(self, record, frame, proposal.model))
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
        rows = validate_results(results, self._state.known_ids(), source)
        record: TellRecord | None = None
        with self._store.transaction() as state:
            summary = merge_results(state, rows, source)
            if summary.changed:
                record = TellRecord(
                    tell=len(state.tells) + 1,
                    at=now(),
                    source=source,
                    new=list(summary.new),
                    updated=list(summary.updated),
                    n_observations=len(state.observations),
                    hypervolume=_hypervolume(self._config, state.observations),
                )
                state.tells.append(record)
        self._state = state
        if record is not None:
            told = record
            notify(self.listeners, "told", lambda x: x.told(self, summary, told))
        return summary

    def cancel(self, ids: Iterable[str], *, reason: str | None = None) -> tuple[str, ...]:
        """Withdraw pending candidates that will get no result (never received, not made…).

        They leave the pending list (and so the acquisition's ``X_pending``), are kept in the
        state's ``cancelled`` record and their ids are never given out again. Results sent
        later for a cancelled id are outside data (they need every design column).

        Args:
            ids: pending candidate ids; ids already cancelled are skipped.
            reason: why, kept with each record.

        Returns:
            The ids cancelled by this call.

        Raises:
            CampaignError: an id with results (observations are never removed) or an id the
                campaign never proposed; nothing is cancelled then.
        """
        wanted = list(dict.fromkeys(str(i) for i in ids))
        cancelled: list[str] = []
        with self._store.transaction() as state:
            observed = {r.candidate_id for r in state.observations}
            pending = {r.candidate_id for r in state.pending}
            done = {r.candidate_id for r in state.cancelled}
            measured = [i for i in wanted if i in observed]
            unknown = [i for i in wanted if i not in observed | pending | done]
            if measured or unknown:
                problems = []
                if measured:
                    problems.append(f"{', '.join(measured)} already have results")
                if unknown:
                    problems.append(f"{', '.join(unknown)} were never proposed here")
                raise CampaignError(
                    f"cannot cancel: {'; '.join(problems)}. Pending now: "
                    f"{', '.join(sorted(pending)) or 'none'}. Nothing was cancelled."
                )
            cancelled = state.cancel_pending([i for i in wanted if i in pending], reason)
        self._state = state
        return tuple(cancelled)

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
            k = len(self._state.rounds)
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
        from poreml.optimize.proposals import fit_model  # imports torch

        seed = round_seed(self._config.seed, len(self._state.rounds) + 1)
        return fit_model(self.observations, self._config, self.space, self._settings, seed)

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
        from poreml.optimize.proposals import model_front  # imports torch

        fitted = model or self.fit_model()
        n = n or self._settings.predicted_front_points
        return model_front(fitted, self._config, self.space, self._settings, n)


# -- helpers ---------------------------------------------------------------------------------------
def _as_store(store: CampaignStore | str | Path, lock_timeout: float) -> CampaignStore:
    if isinstance(store, CampaignStore):
        return store
    return FolderStore(store, lock_timeout=lock_timeout)


def _hypervolume(config: CampaignConfig, records: Sequence[Observation]) -> float:
    """Hypervolume of the observed front of ``records`` against the objectives' thresholds."""
    if not records:
        return 0.0
    frame = observations_frame(records)
    return observed_hypervolume(frame, config.objectives, config.outcome_constraints)


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for rec in frame.to_dict("records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, np.generic):
                v = v.item()
            if v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
                v = None
            clean[str(k)] = v
        rows.append(clean)
    return rows
