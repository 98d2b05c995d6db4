"""``ServeOptions``: everything a prediction server is started with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forgeml.refs import parse_ref

__all__ = ["ServeOptions"]

#: Requests waiting per served version before new ones are refused with 503.
DEFAULT_MAX_QUEUE = 1024
#: Predicted wait (ms) beyond which a request is refused with 503.
DEFAULT_LATENCY_BUDGET_MS = 2000.0
#: Seconds a client has to send a request's headers (slowloris); beyond, 408 and closed.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds a client has to send a request's body once its headers arrived; beyond, 408.
DEFAULT_BODY_TIMEOUT = 30.0
#: Open connections per server process; a connection beyond gets 503 at once and is closed.
DEFAULT_MAX_CONNECTIONS = 1000
#: Seconds in-flight requests get after SIGTERM before they are cancelled: below Kubernetes'
#: 30 s grace period, leaving time to write the prediction log.
DEFAULT_GRACEFUL_SHUTDOWN = 20.0


class ServeOptions(BaseModel):
    """How ``forgeml serve`` runs. JSON-serialisable, so worker processes get the same.

    Attributes:
        models: the served references, ``NAME@ALIAS`` or ``NAME@VERSION``.
        host, port, workers: where and in how many processes Uvicorn listens.
        max_batch_rows: the most rows predicted in one batch.
        max_wait_ms: how long a batch waits for more requests; 0 is adaptive (never waits:
            a batch is what arrived while the previous one ran).
        max_queue: requests waiting per served version; beyond, new ones get 503 with
            ``Retry-After`` (default 1024).
        latency_budget_ms: the longest predicted wait (latency model of the batches) a request
            is queued for; beyond, it gets 503 with ``Retry-After`` (default 2000 ms).
        max_rows: the most rows in one request.
        max_body_bytes: the largest request body accepted (413 beyond).
        cache_size: rows held in each version's prediction cache (0: no cache).
        log_predictions: write every prediction to the metadata store.
        log_capacity: prediction records held in memory waiting to be written.
        when_full: ``drop`` (count and drop records) or ``block`` (hold requests until the
            writer catches up) when the prediction log is full.
        poll_interval: seconds between checks of aliases and stored routes.
        access_log: one JSON line per request on stderr.
        admin_token: required as ``Authorization: Bearer ...`` by the admin endpoints while
            the workspace has no API keys (none: admin endpoints are open on loopback and
            closed beyond it). Keys replace it once the workspace has one.
        allowed_hosts: ``Host`` names accepted besides loopback and the bound address
            (``*``: any).
        rate_limit: requests per second per API key (per client address without one); 0 is
            no limit. Beyond it: 429 with ``Retry-After``.
        rate_burst: requests at once beyond the rate (default: one second's worth).
        unknown_categories: ``error`` (422) or ``pass`` (given to the model).
        trust_pickle: load models stored with joblib (pickle runs code when loaded).
        seed: seed of the random traffic split for requests without a key.
        header_timeout: seconds a client has to send a request's headers (408 beyond).
        body_timeout: seconds a client has to send a request's body after its headers (408).
        max_connections: open connections per process; one more gets 503 at once.
        tls_certfile, tls_keyfile: serve HTTPS with this certificate (PEM, chain included) and
            its private key; both or neither.
        graceful_shutdown: seconds in-flight requests get after SIGTERM (default 20, below
            Kubernetes' 30 s grace period).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    max_batch_rows: int = Field(default=512, ge=1)
    max_wait_ms: float = Field(default=0.0, ge=0)
    max_queue: int = Field(default=DEFAULT_MAX_QUEUE, ge=1)
    latency_budget_ms: float = Field(default=DEFAULT_LATENCY_BUDGET_MS, gt=0)
    max_rows: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    cache_size: int = Field(default=0, ge=0)
    log_predictions: bool = True
    log_capacity: int = Field(default=100_000, ge=1)
    when_full: Literal["drop", "block"] = "drop"
    poll_interval: float = Field(default=1.0, gt=0)
    access_log: bool = True
    admin_token: str | None = Field(default=None, repr=False)  # never in a repr or a log
    allowed_hosts: tuple[str, ...] = ()
    rate_limit: float = Field(default=0.0, ge=0)
    rate_burst: int = Field(default=0, ge=0)
    unknown_categories: Literal["error", "pass"] = "error"
    trust_pickle: bool = False
    seed: int = 0
    header_timeout: float = Field(default=DEFAULT_HEADER_TIMEOUT, gt=0, allow_inf_nan=False)
    body_timeout: float = Field(default=DEFAULT_BODY_TIMEOUT, gt=0, allow_inf_nan=False)
    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1)
    graceful_shutdown: float = Field(default=DEFAULT_GRACEFUL_SHUTDOWN, ge=0, allow_inf_nan=False)
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    @field_validator("models")
    @classmethod
    def _refs(cls, refs: tuple[str, ...]) -> tuple[str, ...]:
        names = [parse_ref(r).name for r in refs]
        if len(set(names)) != len(names):
            raise ValueError("each model name is served once; use a route to serve two versions")
        return refs

    @model_validator(mode="after")
    def _tls_pair(self) -> ServeOptions:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError(
                "TLS needs both the certificate and its key (tls_certfile, tls_keyfile)"
            )
        return self
