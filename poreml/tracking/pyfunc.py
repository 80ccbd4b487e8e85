"""The surrogate as an MLflow ``pyfunc`` model.

:class:`SurrogatePyfunc` loads the saved surrogate folder (artifact ``surrogate``) and predicts a
frame with, for every target, ``<target>_mean``, ``<target>_std``, ``<target>_lower``,
``<target>_upper`` (central interval, level 0.9 unless the ``level`` param says otherwise) and
``in_domain``; ``candidate_id`` is carried through when given. Inputs are design columns (any
subset; the rest take their contract defaults) checked against the physical domain.

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

from poreml.data.schema import COLUMNS, DESIGN_COLUMNS

SURROGATE_ARTIFACT = "surrogate"
"""Key of the saved surrogate folder among the pyfunc artifacts."""

PYFUNC_CODE = Path(__file__).with_name("_pyfunc_code.py")
"""The models-from-code file that builds :class:`SurrogatePyfunc`."""

DEFAULT_LEVEL = 0.9


class SurrogatePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper of a saved poreml surrogate (module doc)."""

    def load_context(self, context: Any) -> None:
        """Load the surrogate from the ``surrogate`` artifact folder."""
        from poreml.surrogates.registry import load

        self.model = load(context.artifacts[SURROGATE_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Predict every target with its interval for each design row.

        Args:
            context: MLflow context (unused after loading).
            model_input: design columns (+ optional ``candidate_id``).
            params: optional ``{"level": 0.9}``.

        Returns:
            ``candidate_id`` (when given), ``<target>_mean|_std|_lower|_upper``, ``in_domain``.

        Raises:
            DataValidationError: naming every bad cell.
        """
        return predict_designs(self.model, model_input, level=_level(params))


def predict_designs(
    model: Any, designs: pd.DataFrame, level: float = DEFAULT_LEVEL
) -> pd.DataFrame:
    """Validate ``designs`` and return :func:`~poreml.surrogates.evaluation.prediction_table`.

    Args:
        model: a fitted surrogate.
        designs: design columns (any subset; left-out ones take the contract defaults) and
            optionally ``candidate_id``; values must lie in the physical domain.
        level: central interval level.

    Returns:
        The prediction table (index 0..n-1).

    Raises:
        DataValidationError: listing every unknown column and bad value.
    """
    from poreml.data.validation import validate_designs
    from poreml.surrogates.evaluation import prediction_table

    frame = pd.DataFrame(designs)
    if "candidate_id" in frame.columns:
        frame["candidate_id"] = frame["candidate_id"].astype(str)
    clean = validate_designs(frame, physical=True, fill_defaults=True)
    return prediction_table(model, clean, level=level).reset_index(drop=True)


def _level(params: dict[str, Any] | None) -> float:
    from poreml.exceptions import ConfigError

    level = float((params or {}).get("level", DEFAULT_LEVEL))
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level: expected a number in (0, 1) (got {level!r})")
    return level


def model_signature(targets: list[str] | tuple[str, ...]) -> ModelSignature:
    """Signature of :class:`SurrogatePyfunc` for a model predicting ``targets``.

    Inputs: ``candidate_id`` (string) and the nine design columns (``route`` string, the rest
    double), all optional. Outputs: the prediction columns. Params: ``level`` (double, 0.9).
    """
    inputs = [ColSpec("string", "candidate_id", required=False)]
    for name in DESIGN_COLUMNS:
        kind = "string" if COLUMNS[name].dtype == "category" else "double"
        inputs.append(ColSpec(kind, name, required=False))
    outputs = [ColSpec("string", "candidate_id", required=False)]
    for t in targets:
        outputs += [ColSpec("double", f"{t}_{s}") for s in ("mean", "std", "lower", "upper")]
    outputs.append(ColSpec("boolean", "in_domain"))
    return ModelSignature(
        inputs=Schema(inputs),
        outputs=Schema(outputs),
        params=ParamSchema([ParamSpec("level", "double", DEFAULT_LEVEL)]),
    )
