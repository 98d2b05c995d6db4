"""The one settings object. This is the only module that reads the environment.

Every value has an environment variable (``FORGEML_`` + the field name in capitals):

======================  ======================  =============================================
field                   variable                default
======================  ======================  =============================================
home                    FORGEML_HOME            ``./.forgeml``
store_url               FORGEML_STORE_URL       ``sqlite:///<home>/forgeml.db``
artifacts               FORGEML_ARTIFACTS       ``<home>/artifacts``
user                    FORGEML_USER            the login name of the process
flush_interval          FORGEML_FLUSH_INTERVAL  0.5 seconds between buffered-log flushes
heartbeat_interval      ...                     10 seconds between run heartbeats
heartbeat_timeout       ...                     60 seconds without a heartbeat: a run is lost
debug                   FORGEML_DEBUG           false: CLI errors print one line, no traceback
======================  ======================  =============================================
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry or no login name in a container
        return "unknown"


class Settings(BaseSettings):
    """Where forgeml keeps its state and how it behaves. Immutable once built."""

    model_config = SettingsConfigDict(env_prefix="FORGEML_", frozen=True, extra="ignore")

    home: Path = Field(default=Path(".forgeml"), description="The workspace folder.")
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store (default: SQLite in the workspace).",
    )
    artifacts: Path | None = Field(
        default=None, description="Root folder of the artifact store; <home>/artifacts if unset."
    )
    user: str = Field(default_factory=_login_name, description="Who is recorded as the actor.")
    flush_interval: float = Field(default=0.5, gt=0, description="Seconds between log flushes.")
    heartbeat_interval: float = Field(default=10.0, gt=0, description="Seconds between beats.")
    heartbeat_timeout: float = Field(
        default=60.0, gt=0, description="A running run with no heartbeat this long is lost."
    )
    debug: bool = Field(default=False, description="Print tracebacks for CLI errors.")
    serve_options: str | None = Field(
        default=None,
        description="ServeOptions as JSON: how `forgeml serve` hands its options to workers.",
    )

    @field_validator("home", "artifacts", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to ``forgeml.db`` inside the workspace."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.home / 'forgeml.db').resolve()}"

    @property
    def resolved_artifacts(self) -> Path:
        """The artifact root, defaulting to ``artifacts/`` inside the workspace."""
        return (self.artifacts or self.home / "artifacts").resolve()
