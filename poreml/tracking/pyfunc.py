"""The surrogate as an MLflow ``pyfunc`` model.

:class:`SurrogatePyfunc` loads the saved model folder (artifact ``surrogate``: the surrogate's
files and ``metadata.json``, see :mod:`poreml.tracking.artifacts`) and predicts a frame with, for
every target, ``<target>_mean``, ``<target>_std``, ``<target>_lower``, ``<target>_upper`` (central
interval, level 0.9 unless the ``level`` param says otherwise), ``conditioned_on`` (the measured
columns the model used, ``;``-joined), ``domain_distance`` (distance to the training data
relative to the calibrated threshold, ``<= 1`` within it) and ``in_domain``; ``candidate_id`` is
carried through when given. Inputs are design columns (any subset; the rest take their contract
defaults) checked against the physical domain, and optionally measured columns of a powder
already made (CONTRACT.md §4.1), checked against their contract range.

It is logged "from code" (:data:`PYFUNC_CODE`, the MLflow-recommended form): nothing is
pickled, the model is rebuilt from this importable class at load time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS, MEASURED_COLUMNS
from poreml.exceptions import ConfigError
from poreml.tracking.artifacts import DEFAULT_LEVEL, load_folder

SURROGATE_ARTIFACT = "surrogate"
"""Key of the saved surrogate folder among the pyfunc artifacts."""

PYFUNC_CODE = Path(__file__).with_name("_pyfunc_code.py")
"""The models-from-code file that builds :class:`SurrogatePyfunc`."""


class SurrogatePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper of a saved poreml model folder (module doc)."""

    def load_context(self, context: Any) -> None:
        """Load the model artifact (surrogate and metadata) from the ``surrogate`` folder."""
        self.artifact = load_folder(context.artifacts[SURROGATE_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predict every target with its interval for each design row.

        Args:
            context: MLflow context (unused after loading).
            model_input: design columns (+ optional ``candidate_id`` and measured columns).
            params: optional ``{"level": 0.9}``.

        Returns:
            ``candidate_id`` (when given), ``<target>_mean|_std|_lower|_upper``,
            ``conditioned_on``, ``domain_distance``, ``in_domain``.

        Raises:
            DataValidationError: naming every bad cell.
        """
        return self.artifact.predict_table(model_input, level=_level(params))


def _level(params: dict[str, Any] | None) -> float:
    level = float((params or {}).get("level", DEFAULT_LEVEL))
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level: expected a number in (0, 1) (got {level!r})")
    return level


def model_signature(targets: list[str] | tuple[str, ...]) -> ModelSignature:
    """Signature of :class:`SurrogatePyfunc` for a model predicting ``targets``.

    Inputs: ``candidate_id`` (string), the nine design columns (``route`` string, the rest
    double) and the measured columns (double), all optional. Outputs: the prediction columns.
    Params: ``level`` (double, 0.9).
    """
    inputs = [ColSpec("string", "candidate_id", required=False)]
    for name in DESIGN_COLUMNS:
        kind = "string" if COLUMNS[name].dtype == "category" else "double"
        inputs.append(ColSpec(kind, name, required=False))
    inputs += [ColSpec("double", name, required=False) for name in MEASURED_COLUMNS]
    outputs = [ColSpec("string", "candidate_id", required=False)]
    for t in targets:
        outputs += [ColSpec("double", f"{t}_{s}") for s in ("mean", "std", "lower", "upper")]
    outputs.append(ColSpec("string", "conditioned_on"))
    outputs.append(ColSpec("double", "domain_distance"))
    outputs.append(ColSpec("boolean", "in_domain"))
    return ModelSignature(
        inputs=Schema(inputs),
        outputs=Schema(outputs),
        params=ParamSchema([ParamSpec("level", "double", DEFAULT_LEVEL)]),
    )
