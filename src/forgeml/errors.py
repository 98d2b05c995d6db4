"""Errors raised by forgeml.

Every error carries a stable ``code``; one table (``_OUTCOMES``) maps a code to the HTTP status
a server answers with and the exit code the CLI ends with, so the two interfaces never disagree.

    ForgeMLError                      internal, exit 1, HTTP 500
    ├── InputError                    bad input from the caller, exit 2, HTTP 400
    │   ├── InvalidFilterError        a search filter or order that does not parse
    │   └── SchemaMismatchError       data that does not fit an expected schema (HTTP 422)
    ├── NotFoundError                 no such run, experiment, blob, dataset, model... (404)
    ├── ConflictError                 the write contradicts what is stored (409)
    ├── AuthenticationError           no valid API key where one is required (401)
    ├── PermissionDeniedError         the principal may not do this (403)
    ├── WorkspaceError                a workspace that cannot be opened or written (exit 2, 500)
    ├── StoreVersionError             a store written by a newer forgeml (exit 2, 500)
    ├── StoreError                    the metadata store failed (exit 1, 503)
    └── ArtifactIntegrityError        stored bytes no longer match their digest (exit 1, 500)

Messages name the thing that is wrong and what was expected; they never echo large inputs.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ArtifactIntegrityError",
    "AuthenticationError",
    "ConflictError",
    "ForgeMLError",
    "InputError",
    "InvalidFilterError",
    "NotFoundError",
    "PermissionDeniedError",
    "SchemaMismatchError",
    "StoreError",
    "StoreVersionError",
    "WorkspaceError",
    "exit_code_for",
    "http_status_for",
]

# code -> (HTTP status, CLI exit code)
_OUTCOMES: dict[str, tuple[int, int]] = {
    "internal": (500, 1),
    "invalid_input": (400, 2),
    "invalid_filter": (400, 2),
    "schema_mismatch": (422, 2),
    "not_found": (404, 2),
    "conflict": (409, 2),
    "unauthenticated": (401, 2),
    "permission_denied": (403, 2),
    "workspace": (500, 2),
    "store_version": (500, 2),
    "store_unavailable": (503, 1),
    "artifact_integrity": (500, 1),
}


class ForgeMLError(Exception):
    """Base class of every error forgeml raises on purpose."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def http_status(self) -> int:
        return _OUTCOMES[self.code][0]

    @property
    def exit_code(self) -> int:
        return _OUTCOMES[self.code][1]


class InputError(ForgeMLError, ValueError):
    """The caller passed something forgeml cannot use."""

    code = "invalid_input"


class InvalidFilterError(InputError):
    """A search filter or order-by clause does not parse or names an unknown field."""

    code = "invalid_filter"


class SchemaMismatchError(InputError):
    """Data does not match the schema it is checked against."""

    code = "schema_mismatch"


class NotFoundError(ForgeMLError, LookupError):
    """The named object does not exist."""

    code = "not_found"


class ConflictError(ForgeMLError):
    """The write contradicts stored state (a changed parameter, an existing name...)."""

    code = "conflict"


class AuthenticationError(ForgeMLError, PermissionError):
    """Access control is on and no valid API key was presented (none, unknown, revoked or
    expired: the message does not say which)."""

    code = "unauthenticated"


class PermissionDeniedError(ForgeMLError, PermissionError):
    """The principal is not allowed to perform the action."""

    code = "permission_denied"


class WorkspaceError(ForgeMLError):
    """The workspace folder cannot be created, read or written."""

    code = "workspace"


class StoreVersionError(ForgeMLError):
    """The metadata store was written by a newer forgeml, or cannot be upgraded."""

    code = "store_version"


class StoreError(ForgeMLError):
    """The metadata store failed (connection lost, lock timeout, driver error)."""

    code = "store_unavailable"


class ArtifactIntegrityError(ForgeMLError):
    """A stored blob's bytes no longer match its sha256 digest."""

    code = "artifact_integrity"


def http_status_for(error: BaseException) -> int:
    """The HTTP status a server answers with for ``error`` (500 for unexpected errors)."""
    return error.http_status if isinstance(error, ForgeMLError) else 500


def exit_code_for(error: BaseException) -> int:
    """The process exit code the CLI ends with for ``error`` (1 for unexpected errors)."""
    return error.exit_code if isinstance(error, ForgeMLError) else 1
