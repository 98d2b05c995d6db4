"""Security (foundation): who acts. Principals today; keys, roles and the audit log later."""

from __future__ import annotations

from forgeml.security._principal import PRINCIPAL_KINDS, Principal, actor_name

__all__ = ["PRINCIPAL_KINDS", "Principal", "actor_name"]
