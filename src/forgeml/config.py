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
api_key                 FORGEML_API_KEY         the API key commands and use cases present
api_key_file            FORGEML_API_KEY_FILE    a file holding it (read when api_key is unset)
admin_token             FORGEML_ADMIN_TOKEN     the server's admin bearer token (no keys)
encryption_key          FORGEML_ENCRYPTION_KEY  seals artifact blobs (AES-256-GCM), 32 bytes
encryption_key_file     ..._KEY_FILE            a file holding it
pii_key                 FORGEML_PII_KEY         the HMAC key of PII hashes (else <home>/pii.key)
pii_key_file            FORGEML_PII_KEY_FILE    a file holding it
======================  ======================  =============================================

Secrets are ``SecretStr``: their ``repr`` and JSON dumps show ``**********``.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
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
    api_key: SecretStr | None = Field(
        default=None, description="The API key presented when access control is on."
    )
    api_key_file: Path | None = Field(
        default=None, description="A file whose first line is the API key."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the server's admin routes (without keys)."
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Artifact encryption key: 64 hex characters or URL-safe base64 of 32 bytes.",
    )
    encryption_key_file: Path | None = Field(
        default=None, description="A file whose first line is the artifact encryption key."
    )
    pii_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of PII hashes: 64 hex characters or URL-safe base64 of 32 bytes.",
    )
    pii_key_file: Path | None = Field(
        default=None, description="A file whose first line is the PII hashing key."
    )
    serve_options: str | None = Field(
        default=None,
        description="ServeOptions as JSON: how `forgeml serve` hands its options to workers.",
    )

    @field_validator("home", "artifacts", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    def api_key_value(self) -> str | None:
        """The API key: ``api_key``, else the first line of ``api_key_file``, else ``None``.

        Raises:
            OSError: the key file cannot be read.
        """
        return _secret_value(self.api_key, self.api_key_file)

    def encryption_key_value(self) -> str | None:
        """The artifact encryption key's text, or ``None`` (blobs stored as they are).

        Raises:
            OSError: the key file cannot be read.
        """
        return _secret_value(self.encryption_key, self.encryption_key_file)

    def pii_key_value(self) -> str | None:
        """The PII hashing key's text, or ``None`` (the workspace's ``pii.key`` file is used).

        Raises:
            OSError: the key file cannot be read.
        """
        return _secret_value(self.pii_key, self.pii_key_file)

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


def _secret_value(value: SecretStr | str | None, file: Path | None) -> str | None:
    """A secret given directly, else the first line of its file, else ``None`` (blank is none).

    Raises:
        OSError: the file cannot be read.
    """
    if value is not None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return text.strip() or None
    if file is not None:
        text = file.expanduser().read_text(encoding="utf-8")
        return (text.strip().splitlines() or [""])[0].strip() or None
    return None
