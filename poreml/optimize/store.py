"""Where a campaign lives: the :class:`CampaignStore` interface and its implementations.

A store keeps a campaign's config text and its :class:`~poreml.optimize.state.CampaignState`,
and changes the state only inside :meth:`CampaignStore.transaction`: the store loads the current
state (other commands may have changed it), the block changes it, and the store commits it
atomically on a clean exit when it changed, or not at all. A store for a database (SQLAlchemy /
PostgreSQL: a row per campaign, ``SELECT … FOR UPDATE`` as the lock) implements the same
methods.

:class:`FolderStore` keeps a campaign in a directory ``DIR``::

    DIR/config.toml      the campaign config as given to ``init`` (copied verbatim)
    DIR/state.json       everything the campaign knows (:mod:`poreml.optimize.state`)
    DIR/.lock            lock file: one poreml command works on the campaign at a time
    DIR/rounds/          per-round proposal tables (CSV), for people; rebuilt from the state
    DIR/reports/         Pareto and hypervolume plots (PNG), for people

Every file is written atomically (:func:`poreml.data.io.write_json` / ``write_text``: temporary
file, fsync, ``os.replace``), so an interrupted command leaves the state as it was before or as
it is after, never half written. ``state.json`` is the only source of truth; it is written last
when a campaign is created, so a directory without it holds no campaign.

The lock is a :class:`filelock.FileLock` (``flock`` on POSIX): the operating system releases it
when the holding process dies, so a killed command never leaves a stale lock behind.

:class:`MemoryStore` keeps a campaign in memory (nothing written), with the same transaction
rules.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from poreml.data.io import DataFileError, read_json, write_json, write_text
from poreml.exceptions import CampaignError
from poreml.optimize.state import SCHEMA_VERSION, STATE_TYPE, CampaignState

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "CampaignStore",
    "FolderStore",
    "MemoryStore",
]

DEFAULT_LOCK_TIMEOUT = 120.0
"""Seconds a command waits for another one working on the same campaign before giving up."""


class CampaignStore(abc.ABC):
    """Where one campaign's config and state live (module doc).

    Implementations keep two promises: a transaction sees the latest committed state and
    commits all of its changes or none, and two transactions on one campaign never interleave.
    """

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the campaign lives, for messages (a directory, a database URL…)."""

    @property
    @abc.abstractmethod
    def directory(self) -> Path | None:
        """The campaign's folder on this machine, or None when it has none."""

    @property
    def short_name(self) -> str | None:
        """What people call the campaign (its folder or database name), or None."""
        return None

    @property
    @abc.abstractmethod
    def reports_dir(self) -> Path | None:
        """Folder for the plots made for people, or None to make none."""

    @property
    @abc.abstractmethod
    def rounds_dir(self) -> Path | None:
        """Folder for the per-round proposal tables made for people, or None to make none."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether the store holds a campaign."""

    @abc.abstractmethod
    def create(
        self, config_text: str, state: CampaignState
    ) -> AbstractContextManager[CampaignState]:
        """Store a new campaign: a context manager yielding ``state`` for last changes.

        The config text and the state are stored on a clean exit of the block.

        Raises:
            CampaignError: the store already holds a campaign (it is never overwritten).
        """

    @abc.abstractmethod
    def load_config_text(self) -> str:
        """The config text the campaign was created with."""

    @abc.abstractmethod
    def load_state(self) -> CampaignState:
        """The latest committed state (no lock needed).

        Raises:
            CampaignError: no campaign here, or an unreadable / incompatible state.
        """

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[CampaignState]:
        """A context manager: lock, yield the latest state, commit the changes.

        The yielded state is a working copy. On a clean exit it is committed when it differs
        from the loaded one (its :meth:`~CampaignState.touch` is called first), atomically; when
        the block raises nothing is committed. The yielded object is the committed state
        afterwards.

        Raises:
            CampaignError: the campaign stayed locked by another command for too long.
        """


class MemoryStore(CampaignStore):
    """A campaign kept in memory only (nothing is written anywhere).

    Args:
        state: the campaign to keep from the start (None: empty until :meth:`create`).
        config_text: its config text.
    """

    def __init__(self, state: CampaignState | None = None, config_text: str = "") -> None:
        self._config_text: str | None = config_text if state is not None else None
        self._state: CampaignState | None = state.copy() if state is not None else None

    @property
    def location(self) -> str:
        """``"<memory>"``."""
        return "<memory>"

    @property
    def directory(self) -> None:
        """None: an in-memory campaign has no folder."""
        return None

    @property
    def reports_dir(self) -> None:
        """None: no plots are written."""
        return None

    @property
    def rounds_dir(self) -> None:
        """None: no round tables are written."""
        return None

    def exists(self) -> bool:
        """Whether a state was stored."""
        return self._state is not None

    @contextmanager
    def create(self, config_text: str, state: CampaignState) -> Iterator[CampaignState]:
        """Keep ``state`` (see :meth:`CampaignStore.create`)."""
        if self.exists():
            raise CampaignError("<memory>: a campaign already exists in this store.")
        yield state
        self._config_text = config_text
        self._state = state.copy()

    def load_config_text(self) -> str:
        """The config text given to :meth:`create`."""
        if self._config_text is None:
            raise CampaignError("<memory>: no campaign in this store.")
        return self._config_text

    def load_state(self) -> CampaignState:
        """A copy of the kept state."""
        if self._state is None:
            raise CampaignError("<memory>: no campaign in this store.")
        return self._state.copy()

    @contextmanager
    def transaction(self) -> Iterator[CampaignState]:
        """See :meth:`CampaignStore.transaction`."""
        loaded = self.load_state()
        work = loaded.copy()
        yield work
        if work != loaded:
            work.touch()
            self._state = work.copy()


class FolderStore(CampaignStore):
    """A campaign directory: config copy, state file and lock (module doc).

    Args:
        directory: the campaign directory (need not exist yet).
        lock_timeout: seconds to wait for the lock before raising :class:`CampaignError`.
    """

    CONFIG = "config.toml"
    STATE = "state.json"
    LOCK = ".lock"

    def __init__(
        self, directory: str | Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        self._directory = Path(directory)
        self.lock_timeout = float(lock_timeout)
        self._lock: FileLock | None = None

    # -- paths ------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        """The directory as text."""
        return str(self._directory)

    @property
    def short_name(self) -> str:
        """The directory's name."""
        return self._directory.name

    @property
    def directory(self) -> Path:
        """The campaign directory."""
        return self._directory

    @property
    def config_path(self) -> Path:
        """``DIR/config.toml``."""
        return self._directory / self.CONFIG

    @property
    def state_path(self) -> Path:
        """``DIR/state.json``."""
        return self._directory / self.STATE

    @property
    def lock_path(self) -> Path:
        """``DIR/.lock``."""
        return self._directory / self.LOCK

    @property
    def rounds_dir(self) -> Path:
        """``DIR/rounds``: per-round proposal tables."""
        return self._directory / "rounds"

    @property
    def reports_dir(self) -> Path:
        """``DIR/reports``: plots."""
        return self._directory / "reports"

    def exists(self) -> bool:
        """Whether the directory holds a campaign (its ``state.json`` exists)."""
        return self.state_path.is_file()

    # -- lock -------------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the campaign lock for the duration of the block (re-entrant).

        Raises:
            CampaignError: the lock was not obtained within :attr:`lock_timeout` seconds.
        """
        if self._lock is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        try:
            self._lock.acquire()
        except Timeout:
            raise CampaignError(
                f"{self._directory}: another poreml command is working on this campaign (its "
                f"lock {self.lock_path} stayed taken for {self.lock_timeout:g} s). Fix: wait "
                "for that command to finish, then run this one again."
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    # -- campaign ---------------------------------------------------------------------------
    @contextmanager
    def create(self, config_text: str, state: CampaignState) -> Iterator[CampaignState]:
        """Copy the config, yield ``state``, then write ``state.json`` (all under the lock).

        Raises:
            CampaignError: the directory already holds a campaign.
        """
        with self.locked():
            if self.exists():
                raise CampaignError(
                    f"{self._directory}: a campaign already exists here ({self.state_path}); "
                    "it is never overwritten. Fix: choose a new directory, or continue this "
                    "campaign with `poreml campaign suggest`."
                )
            write_text(config_text, self.config_path)
            yield state
            write_json(state.to_dict(), self.state_path)

    def load_config_text(self) -> str:
        """The config copy's text."""
        return self.config_path.read_text(encoding="utf-8")

    def load_state(self) -> CampaignState:
        """Load and check ``state.json``.

        Raises:
            CampaignError: no campaign in the directory, an unreadable state file, or a state
                written by an incompatible poreml version.
        """
        if not self.exists():
            raise CampaignError(
                f"{self._directory}: no campaign here (no {self.STATE}). Fix: create one with "
                "`poreml campaign init DIR --config FILE.toml`, or give the right directory."
            )
        try:
            data = read_json(self.state_path)
        except DataFileError as err:
            raise CampaignError(
                f"{err} The campaign state cannot be read; restore {self.state_path} from a "
                "backup (every poreml write is atomic, so this points to outside damage)."
            ) from None
        if not isinstance(data, dict) or data.get("type") != STATE_TYPE:
            raise CampaignError(
                f'{self.state_path}: expected a poreml campaign state ("type": '
                f'"{STATE_TYPE}"), got {type(data).__name__} with type '
                f"{data.get('type') if isinstance(data, dict) else None!r}. Fix: point to a "
                "directory made by `poreml campaign init`."
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise CampaignError(
                f"{self.state_path}: state schema version {version!r}, this poreml reads "
                f"version {SCHEMA_VERSION}. Fix: open the campaign with the poreml version "
                "that wrote it."
            )
        return CampaignState.from_dict(data)

    @contextmanager
    def transaction(self) -> Iterator[CampaignState]:
        """Lock, re-read ``state.json``, yield a working copy, write it back atomically.

        See :meth:`CampaignStore.transaction`; the write is a temporary file, fsync and
        ``os.replace``, so a crash leaves the previous state.
        """
        with self.locked():
            loaded = self.load_state()
            work = loaded.copy()
            yield work
            if work != loaded:
                work.touch()
                write_json(work.to_dict(), self.state_path)
