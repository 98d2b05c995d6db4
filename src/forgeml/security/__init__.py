"""Security (foundation): who acts, with which key and role, and what they may do.

``Principal`` is who acts; ``create_key`` / ``authenticate`` / ``revoke_key`` manage API keys
(stored hashed, shown once); ``_matrix`` is the written matrix of which role may do what on
every CLI command, HTTP route and use case; ``authorize`` checks a principal against it and
against alias guards. The audit log lives in the store (``Workspace.audit``).
"""

from __future__ import annotations

from forgeml.security._access import NEED_KEY, access_control_on, authorize, check_alias_guard
from forgeml.security._keys import (
    INVALID_KEY,
    KEY_PREFIX,
    CreatedKey,
    authenticate,
    check_token,
    create_key,
    hash_secret,
    parse_expiry,
    principal_for,
    revoke_key,
)
from forgeml.security._matrix import (
    ACTIONS,
    CLI_COMMANDS,
    HTTP_ROUTES,
    PUBLIC,
    PYTHON_API,
    ROLES,
    Action,
    allowed,
    render_matrix,
)
from forgeml.security._pii import (
    PII_ACTIONS,
    PiiKey,
    PiiPolicy,
    PiiRule,
    apply_pii,
    detect_pii,
    not_applied,
    parse_pii_options,
    pii_key,
)
from forgeml.security._principal import PRINCIPAL_KINDS, Principal, actor_name

__all__ = [
    "ACTIONS",
    "CLI_COMMANDS",
    "HTTP_ROUTES",
    "INVALID_KEY",
    "KEY_PREFIX",
    "NEED_KEY",
    "PII_ACTIONS",
    "PRINCIPAL_KINDS",
    "PUBLIC",
    "PYTHON_API",
    "ROLES",
    "Action",
    "CreatedKey",
    "PiiKey",
    "PiiPolicy",
    "PiiRule",
    "Principal",
    "access_control_on",
    "actor_name",
    "allowed",
    "apply_pii",
    "authenticate",
    "authorize",
    "check_alias_guard",
    "check_token",
    "create_key",
    "detect_pii",
    "hash_secret",
    "not_applied",
    "parse_expiry",
    "parse_pii_options",
    "pii_key",
    "principal_for",
    "render_matrix",
    "revoke_key",
]
