"""``forgeml keys create | list | revoke | roles``, ``forgeml aliases protect | unprotect |
list``, ``forgeml audit list | verify | export``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from forgeml import workflows
from forgeml._json import dumps_text
from forgeml.cli._common import console, err_console, fmt_ms, open_context, print_json, table
from forgeml.errors import InputError

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke.")
aliases_app = typer.Typer(no_args_is_help=True, help="Alias guards: who may move an alias.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
artifacts_app = typer.Typer(no_args_is_help=True, help="The artifact store: encryption at rest.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@keys_app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help="viewer, scientist, deployer or admin.")],
    name: Annotated[str | None, typer.Option("--name", help="A name (default: ROLE-ID).")] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime (30d, 12h, 45m) or an ISO date (default: none)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the key to this file (mode 600) instead."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Create an API key. The key is printed once and never stored: keep it."""
    from forgeml.security import parse_expiry

    created = workflows.create_key(
        open_context(ctx), role=role, name=name, expires_at=parse_expiry(expires)
    )
    info = created.record.to_dict()
    if output is not None:
        _write_private(output, created.token + "\n")
        info["written_to"] = str(output)
    else:
        info["key"] = created.token
    if json:
        print_json(info)
        return
    r = created.record
    expiry = fmt_ms(r.expires_at) if r.expires_at else "never"
    console.print(f"key {r.name} ({r.role}, id {r.key_id}, expires {expiry})", markup=False)
    if output is not None:
        console.print(f"written to {output} (readable by you only)", markup=False)
    else:
        console.print(created.token, markup=False)
        err_console.print("Shown once: store it now (FORGEML_API_KEY or a key file).")


def _write_private(path: Path, text: str) -> None:
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"--output {path} exists; a key file is never overwritten") from None
    except OSError as e:
        raise InputError(f"Cannot write --output {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@keys_app.command("list")
def list_keys(ctx: typer.Context, json: JsonOption = False) -> None:
    """Every key with its role and state (never a secret)."""
    keys = workflows.list_keys(open_context(ctx))
    if json:
        print_json([k.to_dict() for k in keys])
        return
    if not keys:
        console.print("No keys: access control is off (the embedded single-user default).")
        return
    t = table("name", "id", "role", "state", "created", "by", "expires")
    for k in keys:
        d = k.to_dict()
        t.add_row(
            k.name,
            k.key_id,
            k.role,
            d["state"],
            fmt_ms(k.created_at),
            k.created_by or "-",
            fmt_ms(k.expires_at) if k.expires_at else "never",
        )
    console.print(t)


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The key's name or id.")],
    json: JsonOption = False,
) -> None:
    """Revoke a key: it stops working at once (its record stays)."""
    record = workflows.revoke_key(open_context(ctx), key)
    if json:
        print_json(record.to_dict())
        return
    console.print(f"revoked key {record.name} ({record.role}, id {record.key_id})", markup=False)


@keys_app.command("roles")
def roles() -> None:
    """Print the written matrix: which role may do what, on every command, route and call."""
    from forgeml.security import render_matrix

    sys.stdout.write(render_matrix())


@aliases_app.command("protect")
def protect(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="The alias (production, staging...).")],
    roles: Annotated[
        str | None, typer.Option("--roles", help="Roles that may move it, comma separated.")
    ] = None,
    principals: Annotated[
        str | None,
        typer.Option("--principals", help="Key names that may move it, comma separated."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Only this model's alias (default: every model).")
    ] = "*",
    json: JsonOption = False,
) -> None:
    """Let only the given roles or key names move ALIAS."""
    from forgeml.security import access_control_on

    context = open_context(ctx)
    guard = workflows.protect_alias(
        context, alias, model=model, roles=_names(roles), principals=_names(principals)
    )
    if json:
        print_json(guard.to_dict())
        return
    who = ", ".join([*guard.roles, *(repr(p) for p in guard.principals)])
    console.print(f"{guard.model}@{guard.alias} may be moved by: {who}", markup=False)
    if not access_control_on(context.workspace):
        err_console.print(
            "note: access control is off (no keys); the guard applies once the first key exists"
        )


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@aliases_app.command("unprotect")
def unprotect(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="The alias.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The model (default: every).")] = "*",
) -> None:
    """Drop the guard of ALIAS."""
    workflows.unprotect_alias(open_context(ctx), alias, model=model)
    console.print(f"{model}@{alias} is no longer protected", markup=False)


@aliases_app.command("list")
def list_guards(ctx: typer.Context, json: JsonOption = False) -> None:
    """Every alias guard."""
    guards = open_context(ctx).workspace.guards.list()
    if json:
        print_json([g.to_dict() for g in guards])
        return
    if not guards:
        console.print("No alias guards.")
        return
    t = table("model", "alias", "roles", "principals", "updated", "by")
    for g in guards:
        t.add_row(
            g.model,
            g.alias,
            ", ".join(g.roles) or "-",
            ", ".join(g.principals) or "-",
            fmt_ms(g.updated_at),
            g.updated_by or "-",
        )
    console.print(t)


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--since takes an ISO 8601 date or time; got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Entries from this ISO time (UTC).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor.")] = None,
    obj: Annotated[
        str | None, typer.Option("--object", help="Only this object (a prefix: model:adult).")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="The most recent N.")] = None,
    json: JsonOption = False,
) -> None:
    """Audit entries: who did what, when, from where, before and after."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1; got {limit}")
    entries = workflows.list_audit(
        open_context(ctx), since=_since(since), actor=actor, obj=obj, action=action, limit=limit
    )
    if json:
        print_json([e.to_dict() for e in entries])
        return
    if not entries:
        console.print("No audit entries.")
        return
    t = table("#", "when", "who", "from", "action", "object", "before", "after")
    for e in entries:
        t.add_row(
            str(e.seq),
            fmt_ms(e.at),
            e.actor,
            e.origin,
            e.action,
            e.object,
            "-" if e.before is None else dumps_text(e.before),
            "-" if e.after is None else dumps_text(e.after),
        )
    console.print(t)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, json: JsonOption = False) -> None:
    """Check the hash chain; names the first edited, deleted or reordered entry (exit 1)."""
    report = workflows.verify_audit(open_context(ctx))
    if json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(
            f"audit log intact: {report.entries} entries, head {report.head}", markup=False
        )
    else:
        err_console.print(
            f"audit log broken at entry {report.first_broken}: {report.problem}", markup=False
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Entries from this ISO time (UTC).")
    ] = None,
) -> None:
    """Every entry as JSON lines, with its hashes (for compliance archives)."""
    entries = workflows.list_audit(open_context(ctx), since=_since(since))
    lines = "".join(dumps_text(e.to_dict()) + "\n" for e in entries)
    if output is None:
        sys.stdout.write(lines)
        return
    output.write_text(lines, encoding="utf-8")
    console.print(f"{len(entries)} entries written to {output}", markup=False)


@artifacts_app.command("reencrypt")
def reencrypt(
    ctx: typer.Context,
    old_key_file: Annotated[
        list[Path] | None,
        typer.Option("--old-key-file", help="A file holding a previous key (repeat for several)."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Seal every blob, prediction-log payload and stopped server's journal line with the
    current key (FORGEML_ENCRYPTION_KEY[_FILE]): those stored in clear and those sealed with
    the old keys given (a key rotation)."""
    from forgeml.store._encryption import read_key_file

    old = [read_key_file(p) for p in old_key_file or ()]
    outcome = workflows.reencrypt_artifacts(open_context(ctx), old_keys=old)
    if json:
        print_json(outcome)
        return
    console.print(
        f"{outcome['reencrypted']} blobs re-encrypted, {outcome['already_current']} already "
        f"sealed with key {outcome['key_id']}; {outcome['prediction_log_rows']} prediction-log "
        f"rows and {outcome['journal_lines']} journal lines in {outcome['journal_files']} "
        "files re-encrypted",
        markup=False,
    )
    if outcome["journal_files_in_use"]:
        err_console.print(
            f"warning: {outcome['journal_files_in_use']} journal files of a running server were "
            "left with the key it started with: stop it and run this again",
            markup=False,
        )
