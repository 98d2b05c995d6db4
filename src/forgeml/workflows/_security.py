"""Use cases of access control: API keys, alias guards, the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from forgeml.errors import InputError
from forgeml.security import ROLES, CreatedKey
from forgeml.security import create_key as make_key
from forgeml.security import revoke_key as revoke
from forgeml.store import ANY_MODEL, AliasGuard, AuditRecord, ChainReport, KeyRecord
from forgeml.store._registry import check_alias, check_model_name
from forgeml.workflows._context import Context, use_case

__all__ = [
    "create_key",
    "list_audit",
    "list_keys",
    "protect_alias",
    "reencrypt_artifacts",
    "revoke_key",
    "unprotect_alias",
    "verify_audit",
]


def create_key(
    ctx: Context, *, role: str, name: str | None = None, expires_at: int | None = None
) -> CreatedKey:
    """Create an API key (its secret is in the result, shown this once).

    The first key of a workspace needs no key to create and must be an admin key; after it,
    creating keys needs an admin key.

    Raises:
        InputError: an unknown role, a bad name, or a first key that is not admin.
        ConflictError: a key has this name (or a first key was created meanwhile).
        AuthenticationError, PermissionDeniedError: access control is on and the principal
            is no admin.
    """
    ws = ctx.workspace
    actor = None  # the first key: no key to present yet
    if ws.keys.any():
        ctx.authorize("keys.manage")
        actor = ctx.principal
    with ctx.acting():
        return make_key(ws, role=role, name=name, expires_at=expires_at, actor=actor)


@use_case("keys.manage")
def list_keys(ctx: Context) -> list[KeyRecord]:
    """Every key (never a secret)."""
    return ctx.workspace.keys.list()


@use_case("keys.manage")
def revoke_key(ctx: Context, name_or_id: str) -> KeyRecord:
    """Revoke a key by name or id; it stops working at once.

    Raises:
        NotFoundError: no such key.
    """
    return revoke(ctx.workspace, name_or_id, actor=ctx.principal)


@use_case("guards.manage")
def protect_alias(
    ctx: Context,
    alias: str,
    *,
    model: str = ANY_MODEL,
    roles: Sequence[str] = (),
    principals: Sequence[str] = (),
) -> AliasGuard:
    """Let only ``roles`` and ``principals`` move ``alias`` (of ``model``, or of any model).

    Raises:
        InputError: an unknown role, no role and no principal, or a bad alias or model name.
    """
    check_alias(alias)
    if model != ANY_MODEL:
        check_model_name(model)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InputError(f"--roles are among {', '.join(ROLES)}; got {', '.join(unknown)}")
    if not roles and not principals:
        raise InputError("An alias guard names at least one role or principal")
    return ctx.workspace.guards.set(
        model, alias, roles=list(roles), principals=list(principals), by=ctx.principal.name
    )


@use_case("guards.manage")
def unprotect_alias(ctx: Context, alias: str, *, model: str = ANY_MODEL) -> None:
    """Drop the guard of ``alias`` (of ``model``, or the any-model one).

    Raises:
        NotFoundError: there is none.
    """
    ctx.workspace.guards.remove(model, alias, by=ctx.principal.name)


@use_case("audit.read")
def list_audit(
    ctx: Context,
    *,
    since: int | None = None,
    actor: str | None = None,
    obj: str | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> list[AuditRecord]:
    """Audit entries in order, filtered (see ``AuditStore.entries``)."""
    return ctx.workspace.audit.entries(
        since=since, actor=actor, obj=obj, action=action, limit=limit
    )


@use_case("audit.read")
def verify_audit(ctx: Context) -> ChainReport:
    """Walk the audit chain; the report names the first broken entry."""
    return ctx.workspace.audit.verify()


@use_case("workspace.admin")
def reencrypt_artifacts(ctx: Context, *, old_keys: Sequence[str] = ()) -> dict[str, object]:
    """Seal every artifact blob, every stored prediction-log payload (inputs, outputs,
    labels) and every line of the journal files stopped servers left under
    ``<home>/spool/predictions`` with the workspace's current encryption key: those stored
    before encryption was on and those sealed with ``old_keys`` (a rotation). Audited.

    The journal files of a server still running are left alone (it writes with the key it
    started with) and counted as ``journal_files_in_use``: stop it and run this again.

    Returns:
        ``{"reencrypted": N, "already_current": M, "prediction_log_rows": P,
        "journal_files": F, "journal_lines": L, "journal_files_in_use": U, "key_id": ...}``.

    Raises:
        InputError: the workspace has no encryption key, or an old key is malformed.
        ArtifactIntegrityError: a blob is sealed with a key not given, or is corrupt.
    """
    from forgeml.store._audit import record_change
    from forgeml.store._encryption import EncryptedArtifactStore, load_key

    ws = ctx.workspace
    store = ws.artifacts
    if not isinstance(store, EncryptedArtifactStore):
        raise InputError(
            "The workspace has no encryption key: set FORGEML_ENCRYPTION_KEY or "
            "FORGEML_ENCRYPTION_KEY_FILE to the new key"
        )
    old = [load_key(k) for k in old_keys]
    changed, current = store.with_old_keys(old).reencrypt()
    cipher = ws.predlog.cipher
    payloads = 0 if cipher is None else ws.predlog.reencrypt(cipher.with_old_keys(old))
    journal = {"files": 0, "lines": 0, "torn": 0, "in_use": 0}
    if cipher is not None:
        from forgeml.serve._app import spool_folder
        from forgeml.serve._spool import PredictionSpool

        journal = PredictionSpool.reseal(spool_folder(ws), cipher.with_old_keys(old))
    outcome: dict[str, object] = {
        "reencrypted": changed,
        "already_current": current,
        "prediction_log_rows": payloads,
        "journal_files": journal["files"],
        "journal_lines": journal["lines"],
        "journal_files_in_use": journal["in_use"],
        "key_id": store.key_id,
    }
    with ws.db.transaction():
        record_change(ws.db, "artifacts.reencrypt", "artifacts", ctx.principal.name, after=outcome)
    return outcome
