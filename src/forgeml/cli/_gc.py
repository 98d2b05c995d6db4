"""``forgeml gc``: orphan blobs, interrupted writes and stale temporary folders."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from forgeml.cli._common import console, open_context, print_json, table
from forgeml.errors import InputError

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_SECONDS = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_age(text: str) -> float:
    """Seconds from ``90``, ``30m``, ``24h`` or ``7d``.

    Raises:
        InputError: not a duration of zero or more.
    """
    match = _AGE.match(text)
    if not match:
        raise InputError(f"--grace takes a duration such as 0, 30m, 24h or 7d; got {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def gc(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Delete (default: only list).")] = False,
    grace: Annotated[
        str, typer.Option("--grace", help="Only things older than this: 0, 30m, 24h, 7d.")
    ] = "24h",
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List (or with --apply delete) blobs nothing references, files of interrupted writes
    and forgeml's stale folders in the system temporary folder."""
    from forgeml.workflows import collect_garbage

    outcome = collect_garbage(open_context(ctx), apply=apply, grace_s=parse_age(grace))
    found, removed = outcome.found, outcome.removed
    if json:
        print_json(
            {
                **found.to_dict(),
                "applied": apply,
                "removed": None if removed is None else removed.to_dict(),
            }
        )
        return
    shown = removed if removed is not None else found
    if shown.items:
        t = table("kind", "path", "size", "age")
        for item in shown.items:
            t.add_row(item.kind, item.path, _size(item.size), f"{item.age_s / 3600:.1f} h")
        console.print(t)
    verb = "removed" if removed is not None else "to remove (dry run; --apply deletes)"
    console.print(
        f"{verb}: {shown.count('blob')} orphan blobs, {shown.count('part')} interrupted writes, "
        f"{shown.count('temporary')} temporary folders, {_size(shown.size())}; "
        f"{found.stored:,} blobs stored, {found.referenced:,} referenced; grace {grace}"
    )
