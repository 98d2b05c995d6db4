"""Who acts: the ``Principal`` every recorded change names.

A principal is a plain value that crosses every layer: interfaces build it (the CLI from the
settings' user, the server from its authentication, the loop as itself) and pass it down; the
stores record its ``name``. A principal authenticated by an API key carries the key's role
and id (``security.authenticate``); access checks are in ``security._access``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from forgeml.errors import InputError

if TYPE_CHECKING:
    from forgeml.config import Settings

__all__ = ["PRINCIPAL_KINDS", "Principal", "actor_name"]

#: What kinds of actor there are: a person, an API token, the retraining loop, a service.
PRINCIPAL_KINDS: Final = ("user", "token", "loop", "service")
_MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Principal:
    """An actor: a user, an API token, the loop or a service.

    Attributes:
        name: who, as recorded in histories (``ana``, ``token:ci``, ``loop``).
        kind: one of ``PRINCIPAL_KINDS``.
        role: the role of the API key it authenticated with (``None``: no key, the
            embedded single-user default).
        key_id: the public id of that key; access checks read the key's stored role and
            state again, so a revoked key stops working at once.
    """

    name: str
    kind: str = "user"
    role: str | None = None
    key_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"A principal's name is a non-empty string; got {self.name!r}")
        if len(self.name) > _MAX_NAME or _CONTROL.search(self.name):
            raise InputError(
                f"A principal's name is at most {_MAX_NAME} printable characters; "
                f"got {self.name[:40]!r}"
            )
        if self.kind not in PRINCIPAL_KINDS:
            raise InputError(
                f"A principal's kind is one of {', '.join(PRINCIPAL_KINDS)}; got {self.kind!r}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Principal:
        """The local user the settings name (``FORGEML_USER`` or the login name)."""
        return cls(settings.user, "user")

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, str]:
        """``{"name": ..., "kind": ...}`` (and ``role`` when authenticated by a key)."""
        out = {"name": self.name, "kind": self.kind}
        if self.role is not None:
            out["role"] = self.role
        return out


def actor_name(actor: Principal | str | None, settings: Settings) -> str:
    """The name to record for ``actor``.

    Capabilities take an explicit actor; a caller of the Python API that names none acts as
    the local user of its workspace's settings (the only place that default is applied).

    Args:
        actor: who acts (a ``Principal`` or a name), or ``None`` for the local user.
        settings: the workspace's settings, consulted only when ``actor`` is ``None``.

    Returns:
        The actor's name.

    Raises:
        InputError: ``actor`` is neither a principal nor a non-empty name.
    """
    if actor is None:
        return Principal.from_settings(settings).name
    if isinstance(actor, Principal):
        return actor.name
    if isinstance(actor, str):
        return Principal(actor).name
    raise InputError(f"actor is a Principal or a name; got {type(actor).__name__}")
