"""Runtime settings from ``POREML_*`` environment variables (pydantic-settings).

Embedded defaults need no server: MLflow and Optuna on SQLite files under ``POREML_HOME``
(``.poreml/`` in the working directory). At team scale point the same code elsewhere::

    POREML_TRACKING_URI=http://mlflow.lab:5000
    POREML_OPTUNA_STORAGE=postgresql+psycopg://user@db.lab/optuna
    POREML_CAMPAIGN_STORAGE=postgresql+psycopg://user@db.lab/poreml_campaigns

Settings are read when :func:`get_settings` is called, never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """poreml runtime settings; each field is read from ``POREML_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="POREML_", extra="ignore")

    home: Path = Field(Path(".poreml"), description="folder of the embedded stores")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<home>/mlflow.db"
    )
    artifact_location: str | None = Field(
        None, description="MLflow artifact root for new experiments; default <home>/mlartifacts"
    )
    optuna_storage: str | None = Field(
        None,
        description="Optuna storage URL (any SQLAlchemy URL); default sqlite:///<home>/optuna.db",
    )
    campaign_storage: str | None = Field(
        None,
        description="database of `poreml campaign` commands (any SQLAlchemy URL); unset = "
        "campaign folders",
    )
    device: str = Field("auto", description="torch device for training: auto, cpu or cuda")
    model_uri: str | None = Field(
        None, description="surrogate the API serves, e.g. models:/poreml-surrogate@champion"
    )
    model_dir: Path = Field(Path("models/champion"), description="shipped champion surrogate")
    api_token: str | None = Field(None, description="bearer token required on /v1/* when set")
    api_max_candidates: int = Field(10_000, ge=1, description="largest batch the API accepts")
    api_max_explain_candidates: int = Field(
        16,
        ge=1,
        description="largest batch /v1/explain accepts (each candidate costs ~8,000 model rows)",
    )
    api_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="request size cap")

    @property
    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI in force."""
        return self.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def resolved_artifact_location(self) -> str:
        """Artifact root for experiments created by poreml."""
        return self.artifact_location or (self.home / "mlartifacts").resolve().as_uri()

    @property
    def resolved_optuna_storage(self) -> str:
        """The Optuna storage URL in force."""
        return self.optuna_storage or f"sqlite:///{(self.home / 'optuna.db').resolve()}"


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    return Settings()
