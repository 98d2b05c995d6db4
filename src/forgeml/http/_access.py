"""The server's access control, as one pure ASGI middleware in front of every route.

For each HTTP request, in order:

1. **Host allow-list.** The ``Host`` header must name the server: loopback names, the bound
   address and ``ServeOptions.allowed_hosts`` (``*`` allows any). Anything else is answered 400
   (a DNS-rebinding page cannot reach the server through a name it does not know).
2. **Who and may they.** The route's action comes from the written matrix
   (``security.HTTP_ROUTES``). With access control on (the workspace has keys, or the store is
   PostgreSQL) every non-public route needs ``Authorization: Bearer <key>``: none or an invalid,
   revoked or expired key is 401 (one message for all), a key whose role lacks the action 403.
   Without keys (the embedded default) requests act as the local user, except the admin routes:
   with an admin token configured they need it; bound to anything but loopback without a token
   they are closed (401).
3. **JSON only** on state-changing routes (feedback, the admin routes): a body of another type
   is 415, so a cross-origin form cannot post one.
4. **Rate limit per key** (``rate_limit`` requests per second, ``rate_burst`` at once; per client
   address without a key): beyond it, 429 with ``Retry-After``.

The principal found goes into the ASGI scope (``principal_of``). Keys and the access-control
state are read from the store at most every ``cache_seconds`` (2 s): a revoked key stops
working within that time, and the first key created turns access control on within it.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forgeml._json import dumps
from forgeml.errors import AuthenticationError
from forgeml.security import (
    ACTIONS,
    HTTP_ROUTES,
    INVALID_KEY,
    PUBLIC,
    Principal,
    access_control_on,
    allowed,
    check_token,
    principal_for,
)
from forgeml.serve import PRINCIPAL_SCOPE_KEY
from forgeml.store import KeyRecord, Workspace

__all__ = ["ADMIN_ACTIONS", "AccessMiddleware", "AccessPolicy", "is_loopback", "match_route"]

_log = logging.getLogger("forgeml.serve")
SCOPE_KEY: Final = PRINCIPAL_SCOPE_KEY  # where the prediction server reads it (feedback)
#: The actions of the admin routes: closed without a key or token off loopback.
ADMIN_ACTIONS: Final = frozenset({"serve.admin", "route.write", "alias.move"})
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARD: Final = frozenset({"0.0.0.0", "::", ""})
_DOCS_ASSETS: Final = "/docs/assets/"
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$"
    )


_ROUTES: Final = [(m, _compile(p), a) for (m, p), a in HTTP_ROUTES.items()]


_MATCHED: dict[tuple[str, str], str | None] = {}  # the paths seen last, with their action
_MATCHED_SIZE: Final = 4096


def match_route(method: str, path: str) -> str | None:
    """The action of ``method path`` in the written matrix (``None``: no such route)."""
    key = (method, path)
    try:
        return _MATCHED[key]
    except KeyError:
        pass
    action = _match_route(method, path)
    if len(_MATCHED) >= _MATCHED_SIZE:  # any caller's paths: bounded, started afresh
        _MATCHED.clear()
    _MATCHED[key] = action
    return action


def _match_route(method: str, path: str) -> str | None:
    if method == "GET" and path.startswith(_DOCS_ASSETS):
        return PUBLIC
    if method == "HEAD":
        method = "GET"
    for m, pattern, action in _ROUTES:
        if m == method and pattern.match(path):
            return action
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8000
        return header[1 : header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


@dataclass
class _Bucket:
    tokens: float
    at: float


class _RateLimiter:
    """A token bucket per caller: ``rate`` per second, at most ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait(self, who: str) -> float:
        """0 when ``who`` may go now (one token taken), else the seconds until it may."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(who)
            if bucket is None:
                if len(self._buckets) > 100_000:  # forget idle callers
                    self._buckets.clear()
                bucket = self._buckets[who] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


class _KeyMiss(Exception):
    """A key the cache does not hold (or holds no longer): it is read from the store."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id


class _KeyCache:
    """Keys and the access-control state of a workspace, re-read every ``ttl`` seconds.

    The state is read off the event loop by one thread job at a time, which every request
    arriving meanwhile waits for (not one job, and one database connection, per request), and
    is dated from when that read began. Once on it stays on (keys are never deleted, and a
    PostgreSQL store is always on), so it is not read again. A key it does not hold is read
    off the event loop too, by a thread job of the request that presents it.
    """

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl, self.clock = ttl, clock
        self._keys: dict[str, tuple[float, KeyRecord | None]] = {}
        self._on: tuple[float, bool] | None = None
        self._reading: asyncio.Future[bool] | None = None

    def cached_on(self) -> bool | None:
        on = self._on
        if on is not None and (on[1] or self.clock() - on[0] < self.ttl):
            return on[1]
        return None

    async def refresh_on(self, ws: Workspace) -> bool:
        """The state read now, by the read under way if there is one."""
        reading = self._reading
        if reading is None:
            reading = self._reading = asyncio.ensure_future(self._read_on(ws))
        # a request that goes away (its client left) leaves the read to the others
        return await asyncio.shield(reading)

    async def _read_on(self, ws: Workspace) -> bool:
        started = self.clock()
        try:
            on = await anyio.to_thread.run_sync(access_control_on, ws)
        finally:
            self._reading = None
        self._on = (started, on)
        return on

    def cached_key(self, key_id: str) -> tuple[bool, KeyRecord | None]:
        found = self._keys.get(key_id)
        if found is not None and self.clock() - found[0] < self.ttl:
            return True, found[1]
        return False, None

    def read_key(self, ws: Workspace, key_id: str) -> KeyRecord | None:
        record = ws.keys.get(key_id)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[key_id] = (self.clock(), record)
        return record


@dataclass(frozen=True)
class AccessPolicy:
    """How a server decides who may do what (built from ``ServeOptions`` and the settings).

    Attributes:
        local: who requests act as without keys (the user who started the server).
        bound_host: the address the server listens on.
        allowed_hosts: more ``Host`` names to accept (``*``: any).
        admin_token: the admin routes' bearer token when the workspace has no keys.
        rate_limit: requests per second per key or client address (0: no limit).
        rate_burst: requests at once beyond the rate (default: one second's worth, at least 1).
        cache_seconds: how long keys and the access-control state are cached.
    """

    local: Principal
    bound_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    admin_token: str | None = None
    rate_limit: float = 0.0
    rate_burst: int = 0
    cache_seconds: float = 2.0

    def hosts(self) -> frozenset[str] | None:
        """The ``Host`` names accepted (``None``: any)."""
        extra = {h.strip().lower() for h in self.allowed_hosts if h.strip()}
        if "*" in extra:
            return None
        names = set(_LOOPBACK_NAMES) | extra
        if self.bound_host not in _WILDCARD:
            names.add(self.bound_host.lower())
        return frozenset(names)


class _Refusal(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


class AccessMiddleware:
    """Pure ASGI middleware applying an ``AccessPolicy`` to every HTTP request.

    Args:
        app: the application inside.
        policy: the server's policy.
        workspace: the workspace keys are read from (default: the serving application's,
            ``scope["app"].state.serving.workspace``).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: AccessPolicy,
        workspace: Workspace | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.policy = policy
        self._workspace = workspace
        self._hosts = policy.hosts()
        self._loopback = is_loopback(policy.bound_host)
        self._token = f"Bearer {policy.admin_token}".encode() if policy.admin_token else None
        self._cache = _KeyCache(policy.cache_seconds, clock)
        self._limiter = (
            _RateLimiter(
                policy.rate_limit, policy.rate_burst or int(policy.rate_limit + 0.999), clock
            )
            if policy.rate_limit > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope[SCOPE_KEY] = await self._admit(scope)
        except _Refusal as refusal:
            await self._refuse(scope, send, refusal)
            return
        await self.app(scope, receive, send)

    def _workspace_of(self, scope: Scope) -> Workspace:
        ws = self._workspace
        if ws is None:  # the serving application's, the same for every request
            ws = self._workspace = scope["app"].state.serving.workspace
        return ws

    async def _admit(self, scope: Scope) -> Principal | None:
        headers = _Headers(scope["headers"])
        if self._hosts is not None:
            host = _host_of(headers.host or "")
            if host and host not in self._hosts:
                raise _Refusal(
                    400,
                    "invalid_host",
                    "The Host header names no address this server answers to",
                    "Host",
                )
        method, path = scope["method"], scope["path"]
        action = match_route(method, path)
        principal = await self._principal(scope, headers.authorization, action)
        if action is not None and ACTIONS[action].changes_state and method in _BODY_METHODS:
            _json_only(headers)
        if self._limiter is not None and action != PUBLIC:
            who = principal.name if principal is not None and principal.key_id else _client(scope)
            wait = self._limiter.wait(who)
            if wait > 0:
                raise _Refusal(
                    429,
                    "rate_limited",
                    f"More than {self.policy.rate_limit:g} requests per second; retry later",
                    "Authorization",
                    {"Retry-After": str(max(1, int(wait + 0.999)))},
                )
        return principal

    async def _principal(
        self, scope: Scope, given: str | None, action: str | None
    ) -> Principal | None:
        ws = self._workspace_of(scope)
        on = self._cache.cached_on()
        if on is None:
            on = await self._cache.refresh_on(ws)
        if not on:
            return self._without_keys(given, action)
        if action == PUBLIC:
            return None
        if given is None or not given.startswith("Bearer "):
            raise _unauthorized(INVALID_KEY)
        try:
            try:
                record = check_token(given[7:], self._cached_key)
            except _KeyMiss as miss:  # read off the event loop (a store round trip)
                fresh = await anyio.to_thread.run_sync(self._cache.read_key, ws, miss.key_id)
                record = check_token(given[7:], lambda _key_id: fresh)
        except AuthenticationError:
            raise _unauthorized(INVALID_KEY) from None
        if action is not None and not allowed(record.role, action):
            spec = ACTIONS[action]
            raise _Refusal(
                403,
                "forbidden",
                f"The role {record.role} may not {spec.description}",
                "Authorization",
            )
        return principal_for(record)

    def _cached_key(self, key_id: str) -> KeyRecord | None:
        hit, record = self._cache.cached_key(key_id)
        if not hit:
            raise _KeyMiss(key_id)
        return record

    def _without_keys(self, given: str | None, action: str | None) -> Principal | None:
        if self._token is not None and given is not None:
            presented = given.encode("utf-8", "surrogateescape")
            if hmac.compare_digest(presented, self._token):  # constant time
                return Principal("token:admin", "token")
        if action not in ADMIN_ACTIONS:
            return self.policy.local
        if self._token is not None:
            raise _unauthorized("The admin routes need 'Authorization: Bearer <admin token>'")
        if not self._loopback:
            raise _unauthorized(
                "The admin routes are closed: this server listens beyond loopback and the "
                "workspace has no API key (forgeml keys create --role admin) nor an admin token"
            )
        return self.policy.local

    async def _refuse(self, scope: Scope, send: Send, refusal: _Refusal) -> None:
        path = scope.get("path", "")
        if path == "/v2" or path.startswith("/v2/"):
            body: dict[str, Any] = {"error": refusal.message}
        else:
            body = {
                "error": {"code": refusal.code, "message": refusal.message, "field": refusal.field}
            }
        content = dumps(body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in refusal.headers.items()),
        ]
        start: Message = {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": headers,
        }
        await send(start)
        await send({"type": "http.response.body", "body": content})


def _unauthorized(message: str) -> _Refusal:
    return _Refusal(401, "unauthorized", message, "Authorization", {"WWW-Authenticate": "Bearer"})


# header name -> the ``_Headers`` attribute that holds its first value
_HEADER_ATTRIBUTES: Final = {
    b"host": "host",
    b"authorization": "authorization",
    b"content-type": "content_type",
    b"content-length": "content_length",
}


class _Headers:
    """The request headers the policy reads, found in one pass over the ASGI list: the first
    value of each name (as Starlette's ``Headers.get``) and whether ``Transfer-Encoding`` was
    given at all."""

    __slots__ = ("authorization", "chunked", "content_length", "content_type", "host")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.host: str | None = None
        self.authorization: str | None = None
        self.content_type: str | None = None
        self.content_length: str | None = None
        self.chunked = False
        for name, value in raw:
            attribute = _HEADER_ATTRIBUTES.get(name)
            if attribute is not None:
                if getattr(self, attribute) is None:
                    setattr(self, attribute, value.decode("latin-1"))
            elif name == b"transfer-encoding":
                self.chunked = True


def _json_only(headers: _Headers) -> None:
    length = headers.content_length
    has_body = (length is not None and length.strip() not in ("", "0")) or headers.chunked
    if not has_body:
        return
    kind = (headers.content_type or "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return
    raise _Refusal(
        415,
        "unsupported_media_type",
        f"This route takes a JSON body (Content-Type: application/json); got {kind or 'none'!r}",
        "Content-Type",
    )


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:unknown"


def principal_of(scope: Any) -> Principal | None:
    """The principal the middleware found for a request (``None``: not authenticated)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Principal) else None


def warn_if_exposed(policy: AccessPolicy) -> str | None:
    """The warning a server bound beyond loopback logs at start (``None`` on loopback)."""
    if is_loopback(policy.bound_host):
        return None
    message = (
        f"forgeml serve listens on {policy.bound_host}, beyond loopback: without API keys the "
        "prediction routes are open to anyone who can reach it and the admin routes are "
        + ("guarded by the admin token" if policy.admin_token else "closed")
        + "; create keys (forgeml keys create --role admin) to require them everywhere. "
        + "Host names accepted: "
        + (", ".join(sorted(policy.hosts() or ())) or "any")
    )
    _log.warning(message)
    return message
