"""The folder format of a saved surrogate, read and written without knowing the model classes.

A saved model is a folder with ``config.json`` (the registered model name, its settings and its
fitted statistics), ``tensors.pt`` (loaded with ``torch.load(weights_only=True)``) and, for
scikit-learn models, ``estimators.joblib``. joblib files are pickles: load only trusted, local
artifacts. Which class rebuilds a folder is the registry's business
(:func:`poreml.surrogates.registry.load`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from torch import Tensor

from poreml.exceptions import ConfigError

__all__ = ["FORMAT", "FORMAT_VERSION", "SavedModel", "read_model", "write_model"]

FORMAT = "poreml-surrogate"
"""Value of ``format`` in ``config.json``."""

FORMAT_VERSION = 1
"""Value of ``format_version`` in ``config.json``."""

_CONFIG = "config.json"
_TENSORS = "tensors.pt"
_ARTIFACT = "estimators.joblib"


@dataclass
class SavedModel:
    """The contents of a saved-model folder.

    Attributes:
        model: registry name of the model class.
        params: the model's settings (``get_params(deep=False)``); lists come back as tuples.
        fitted: JSON-compatible fitted statistics.
        tensors: tensors saved with ``torch.save``.
        artifact: a picklable object saved with joblib (scikit-learn estimators), or None.
    """

    model: str
    params: dict[str, Any]
    fitted: dict[str, Any]
    tensors: dict[str, Tensor] = field(default_factory=dict)
    artifact: Any = None


def write_model(path: str | Path, saved: SavedModel) -> Path:
    """Write ``saved`` to the folder ``path`` (created; files inside are replaced).

    Returns:
        The folder.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": saved.model,
        "params": _jsonable(saved.params),
        "fitted": saved.fitted,
    }
    (folder / _CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tensors = {k: v.detach().cpu().contiguous() for k, v in saved.tensors.items()}
    torch.save(tensors, folder / _TENSORS)
    artifact_path = folder / _ARTIFACT
    if saved.artifact is not None:
        joblib.dump(saved.artifact, artifact_path)
    elif artifact_path.exists():
        artifact_path.unlink()
    return folder


def read_model(path: str | Path) -> SavedModel:
    """Read a folder written by :func:`write_model`.

    Only read trusted, local artifacts: ``estimators.joblib`` is a pickle.

    Raises:
        ConfigError: the folder holds no poreml surrogate.
    """
    folder = Path(path)
    config_path = folder / _CONFIG
    if not config_path.is_file():
        raise ConfigError(f"{folder}: no config.json; expected a folder written by save()")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") != FORMAT:
        raise ConfigError(
            f"{config_path}: not a poreml surrogate (format {config.get('format')!r})"
        )
    tensors = torch.load(folder / _TENSORS, map_location="cpu", weights_only=True)
    artifact_path = folder / _ARTIFACT
    artifact = joblib.load(artifact_path) if artifact_path.is_file() else None
    return SavedModel(
        model=config["model"],
        params={k: _from_json(v) for k, v in config["params"].items()},
        fitted=config["fitted"],
        tensors=tensors,
        artifact=artifact,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    """Lists in saved settings come back as tuples (settings are immutable sequences)."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value
