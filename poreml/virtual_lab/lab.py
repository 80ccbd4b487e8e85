"""DataFrame façade of the virtual lab: designs in, measured properties out.

:class:`VirtualLab` validates design frames against the data contract (physical domain of spec
section 2.1), runs the physics of :mod:`poreml.virtual_lab.physics` on numpy arrays, optionally
adds the noise of :mod:`poreml.virtual_lab.noise` and returns a frame with the contract columns:

``candidate_id`` · the nine design columns (as requested, not as realised) · the ten measured
columns (CONTRACT.md §1) · ``feasible`` (bool) · with ``extra=True`` the additional outputs of
spec section 2.4 (:data:`~poreml.virtual_lab.physics.EXTRA_OUTPUTS`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from poreml.data.schema import CONTINUOUS_DESIGN_COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS, ROUTES
from poreml.data.validation import validate_designs
from poreml.exceptions import DataValidationError, Problem
from poreml.virtual_lab.noise import BatchNoise, MeasurementNoise, simulate_measurement
from poreml.virtual_lab.params import DEFAULT_SCENARIO, LabParams, lab_params
from poreml.virtual_lab.physics import EXTRA_OUTPUTS, simulate

__all__ = ["ID_PREFIX", "VirtualLab", "measure"]

ID_PREFIX = "VL-"
"""Prefix of generated candidate ids (``VL-0001``, ``VL-0002``, …)."""


class VirtualLab:
    """The physics-based virtual lab for one scenario and one (optionally randomised) instance.

    Args:
        scenario: a scenario name of spec section 5 (``baseline``, ``no_FEC``,
            ``full_cell_b15``, ``fast_charge_2C``, ``high_loading``).
        instance_seed: seed of a randomised instance of the constants (spec section 7), or
            None for the default constants.
        params: a complete parameter set to use instead (e.g. from
            :meth:`LabParams.from_dict`); ``scenario`` and ``instance_seed`` are then ignored.
        batch_noise: batch (process) noise levels (spec section 6.1).
        measurement_noise: measurement noise levels (spec section 6.2).

    Attributes:
        params: the :class:`~poreml.virtual_lab.params.LabParams` in use.

    Raises:
        ConfigError: for an unknown scenario name (the message lists the allowed names).

    Example:
        >>> lab = VirtualLab("baseline")
        >>> df = lab.evaluate(pd.DataFrame({"route": ["bottom_up"], "porosity": [0.4]}))
        >>> bool(df.loc[0, "feasible"])
        True
    """

    def __init__(
        self,
        scenario: str = DEFAULT_SCENARIO,
        instance_seed: int | None = None,
        *,
        params: LabParams | None = None,
        batch_noise: BatchNoise | None = None,
        measurement_noise: MeasurementNoise | None = None,
    ) -> None:
        self.params = params if params is not None else lab_params(scenario, instance_seed)
        self.batch_noise = batch_noise or BatchNoise()
        self.measurement_noise = measurement_noise or MeasurementNoise()

    @property
    def scenario(self) -> str:
        """Name of the scenario in use."""
        return self.params.scenario

    @property
    def instance_seed(self) -> int | None:
        """Seed of the randomised instance, or None for the default constants."""
        return self.params.instance_seed

    def __repr__(self) -> str:
        return f"VirtualLab(scenario={self.scenario!r}, instance_seed={self.instance_seed!r})"

    def evaluate(
        self, designs: pd.DataFrame, *, extra: bool = False, source: str | None = None
    ) -> pd.DataFrame:
        """Noise-free properties of ``designs`` (``poreml lab measure --no-noise``).

        Args:
            designs: one row per design: any subset of the design columns (the rest take
                their contract defaults) and optionally ``candidate_id``.
            extra: add the additional outputs of spec section 2.4.
            source: label of the input (e.g. a file name) for error messages.

        Returns:
            ``candidate_id``, design columns, measured columns, ``feasible`` (+ extras).

        Raises:
            DataValidationError: listing every bad cell (outside the physical domain of
                spec 2.1, NaN or inf, unknown route, unknown column, blank or repeated id).
        """
        return self.measure(designs, noise=False, extra=extra, source=source)

    def measure(
        self,
        designs: pd.DataFrame,
        *,
        seed: int | None = None,
        noise: bool = True,
        extra: bool = False,
        source: str | None = None,
    ) -> pd.DataFrame:
        """Measure ``designs``: batch noise, physics, measurement noise (spec section 6).

        Args:
            designs: one row per design: any subset of the design columns (the rest take
                their contract defaults) and optionally ``candidate_id`` (generated as
                ``VL-0001``, … when absent).
            seed: seed of the noise generator (``numpy.random.default_rng``); None draws
                fresh entropy. Ignored when ``noise`` is False.
            noise: add batch and measurement noise; False gives the deterministic model.
            extra: add the additional outputs of spec section 2.4 (batch noise only).
            source: label of the input (e.g. a file name) for error messages.

        Returns:
            A new frame, one row per design, in input order: ``candidate_id`` (str), the
            design columns as requested, the measured columns of CONTRACT.md §1,
            ``feasible`` (bool: whether the route can make the requested design) and, with
            ``extra``, :data:`~poreml.virtual_lab.physics.EXTRA_OUTPUTS`.

        Raises:
            DataValidationError: listing every bad cell.
        """
        frame = validate_designs(designs, source=source, physical=True)
        ids = _candidate_ids(frame, source)
        requested = _design_arrays(frame)
        keys = (*MEASURED_COLUMNS, *(EXTRA_OUTPUTS if extra else ()))
        if noise:
            res = simulate_measurement(
                requested,
                self.params,
                rng=np.random.default_rng(seed),
                extra=extra,
                batch_noise=self.batch_noise,
                measurement_noise=self.measurement_noise,
            )
        else:
            res = simulate(requested, self.params, extra=extra)
        out = frame[list(DESIGN_COLUMNS)].copy()
        out.insert(0, "candidate_id", ids)
        measured = pd.DataFrame({k: res[k] for k in keys}, index=out.index)
        measured.insert(len(MEASURED_COLUMNS), "feasible", np.asarray(res["feasible"], dtype=bool))
        return pd.concat([out, measured], axis=1)


def measure(
    designs: pd.DataFrame,
    *,
    scenario: str = DEFAULT_SCENARIO,
    seed: int | None = None,
    noise: bool = True,
    instance_seed: int | None = None,
    extra: bool = False,
    source: str | None = None,
) -> pd.DataFrame:
    """Measure ``designs`` in a fresh :class:`VirtualLab` (see :meth:`VirtualLab.measure`).

    Args:
        designs: design columns (+ optional ``candidate_id``), one row per design.
        scenario: scenario name (spec section 5).
        seed: noise seed; None draws fresh entropy.
        noise: False for the deterministic model.
        instance_seed: randomised instance (spec section 7), or None for the defaults.
        extra: add the additional outputs of spec section 2.4.
        source: label of the input for error messages.

    Returns:
        The frame of :meth:`VirtualLab.measure`.
    """
    lab = VirtualLab(scenario, instance_seed)
    return lab.measure(designs, seed=seed, noise=noise, extra=extra, source=source)


def _candidate_ids(frame: pd.DataFrame, source: str | None) -> pd.Series:
    """The ``candidate_id`` column as str, generated (``VL-0001`` …) when absent."""
    n = len(frame)
    if "candidate_id" not in frame.columns:
        width = max(4, len(str(n)))
        return pd.Series([f"{ID_PREFIX}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    ids = frame["candidate_id"]
    problems = [
        Problem(i + 1, "candidate_id", "blank", "a non-empty candidate id")
        for i in np.flatnonzero(ids.isna().to_numpy())
    ]
    text = ids.astype(str)
    dup = ids.notna() & text.duplicated(keep="first")
    problems += [
        Problem(i + 1, "candidate_id", text.iloc[i], "a candidate_id not used in earlier rows")
        for i in np.flatnonzero(dup.to_numpy())
    ]
    if problems:
        raise DataValidationError(problems, source)
    return text.astype(object).reset_index(drop=True)


def _design_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Validated design frame → 1-D arrays (``route`` as integer codes, floats as float64)."""
    arrays = {
        "route": pd.Categorical(frame["route"], categories=ROUTES).codes.astype(np.intp),
    }
    for name in CONTINUOUS_DESIGN_COLUMNS:
        arrays[name] = frame[name].to_numpy(dtype=np.float64)
    return arrays
