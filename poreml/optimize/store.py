"""The campaign directory: config copy, state file and lock.

Layout of a campaign directory ``DIR``::

    DIR/config.toml      the campaign config as given to ``init`` (copied verbatim)
    DIR/state.json       everything the campaign knows (see :mod:`poreml.optimize.campaign`)
    DIR/.lock            lock file: one poreml command works on the campaign at a time
    DIR/rounds/          per-round proposal tables (CSV), for people; rebuilt from the state
    DIR/reports/         Pareto and hypervolume plots (PNG), for people

Every file is written atomically (:func:`poreml.data.io.write_json` / ``write_text``: temporary
file, fsync, ``os.replace``), so an interrupted command leaves the state as it was before or as
it is after, never half written. ``state.json`` is the only source of truth; it is written last
when a campaign is created, so a directory without it holds no campaign.

The lock is a :class:`filelock.FileLock` (``flock`` on POSIX): the operating system releases it
when the holding process dies, so a killed command never leaves a stale lock behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from poreml.data.io import DataFileError, read_json, write_json, write_text
from poreml.exceptions import CampaignError

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "STATE_TYPE",
    "CampaignStore",
]

SCHEMA_VERSION = 1
"""Version of the ``state.json`` layout; bumped on incompatible changes."""

STATE_TYPE = "CampaignState"
"""Value of the ``"type"`` field of ``state.json``."""

DEFAULT_LOCK_TIMEOUT = 120.0
"""Seconds a command waits for another one working on the same campaign before giving up."""


class CampaignStore:
    """Files of one campaign directory.

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
        self.directory = Path(directory)
        self.lock_timeout = float(lock_timeout)
        self._lock: FileLock | None = None

    # -- paths ------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        """``DIR/config.toml``."""
        return self.directory / self.CONFIG

    @property
    def state_path(self) -> Path:
        """``DIR/state.json``."""
        return self.directory / self.STATE

    @property
    def lock_path(self) -> Path:
        """``DIR/.lock``."""
        return self.directory / self.LOCK

    @property
    def rounds_dir(self) -> Path:
        """``DIR/rounds``: per-round proposal tables."""
        return self.directory / "rounds"

    @property
    def reports_dir(self) -> Path:
        """``DIR/reports``: plots."""
        return self.directory / "reports"

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
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(self.lock_path, timeout=self.lock_timeout)
        try:
            self._lock.acquire()
        except Timeout:
            raise CampaignError(
                f"{self.directory}: another poreml command is working on this campaign (its "
                f"lock {self.lock_path} stayed taken for {self.lock_timeout:g} s). Fix: wait "
                "for that command to finish, then run this one again."
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    # -- files ------------------------------------------------------------------------------
    def write_config(self, text: str) -> Path:
        """Write the config copy atomically."""
        return write_text(text, self.config_path)

    def read_config_text(self) -> str:
        """The config copy's text."""
        return self.config_path.read_text(encoding="utf-8")

    def read_state(self) -> dict[str, Any]:
        """Load and check ``state.json``.

        Raises:
            CampaignError: no campaign in the directory, an unreadable state file, or a state
                written by an incompatible poreml version.
        """
        if not self.exists():
            raise CampaignError(
                f"{self.directory}: no campaign here (no {self.STATE}). Fix: create one with "
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
        return data

    def write_state(self, state: dict[str, Any]) -> Path:
        """Write ``state.json`` atomically (temporary file, fsync, replace)."""
        return write_json(state, self.state_path)
