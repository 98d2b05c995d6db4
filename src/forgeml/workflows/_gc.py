"""Use case: collect a workspace's garbage (orphan blobs, interrupted writes, stale temporary
folders), looking only unless asked to delete."""

from __future__ import annotations

from dataclasses import dataclass

from forgeml.store._audit import record_change
from forgeml.store._gc import DEFAULT_GRACE_S, Garbage, find_garbage, remove_garbage
from forgeml.workflows._context import Context, use_case

__all__ = ["GarbageCollection", "collect_garbage"]


@dataclass(frozen=True, slots=True)
class GarbageCollection:
    """What a collection found and, when applied, what it deleted (``None``: a dry run)."""

    found: Garbage
    removed: Garbage | None


@use_case("workspace.admin")
def collect_garbage(
    ctx: Context, *, apply: bool = False, grace_s: float = DEFAULT_GRACE_S
) -> GarbageCollection:
    """Find (and with ``apply``, delete) what the workspace no longer needs: blobs no
    dataset version, split, run artifact or model bundle references, ``tmp/*.part`` files of
    interrupted writes, and forgeml's folders in the system temporary folder, each older than
    ``grace_s`` seconds (see ``forgeml.store._gc``).

    Raises:
        InputError: a negative grace period or a store that is not local.
        ArtifactIntegrityError: a referenced tree is damaged (nothing is deleted).
    """
    found = find_garbage(ctx.workspace, grace_s=grace_s)
    if not apply:
        return GarbageCollection(found, None)
    removed = remove_garbage(ctx.workspace, found)
    if removed.items:  # files are not transactional: the entry records what was deleted
        ws = ctx.workspace
        with ws.db.transaction():
            record_change(
                ws.db,
                "gc.apply",
                "artifacts",
                ctx.principal.name,
                after={k: v for k, v in removed.to_dict().items() if k != "items"},
            )
    return GarbageCollection(found, removed)
