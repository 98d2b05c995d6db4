"""Use cases over tracked runs: list a run's artifacts, download them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.errors import InputError, NotFoundError
from forgeml.workflows._context import Context, use_case

__all__ = ["RunArtifact", "download_run_artifacts", "run_artifacts"]


@dataclass(frozen=True, slots=True)
class RunArtifact:
    """One file of a run (a file artifact, or a file inside a folder artifact).

    Attributes:
        path: the file's path under the run (``evaluation/report.html``).
        artifact: the artifact it belongs to (``evaluation``).
        digest: the sha256 of its content.
        size: bytes.
    """

    path: str
    artifact: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {
            "path": self.path,
            "artifact": self.artifact,
            "digest": self.digest,
            "size": self.size,
        }


@use_case("read")
def run_artifacts(ctx: Context, run_id: str) -> list[RunArtifact]:
    """Every file a run stored, folders expanded, in path order.

    Args:
        ctx: where (reading needs no principal beyond the context's).
        run_id: the run's id or a unique prefix.

    Raises:
        NotFoundError: no such run.
    """
    ws = ctx.workspace
    record = ws.runs.get_run(run_id)
    files: list[RunArtifact] = []
    for ref in record.artifacts:
        if ref.kind == "dir":
            files += [
                RunArtifact(f"{ref.path}/{e.path}", ref.path, e.digest, e.size)
                for e in ws.artifacts.tree(ref.digest)
            ]
        else:
            files.append(RunArtifact(ref.path, ref.path, ref.digest, ref.size))
    return sorted(files, key=lambda f: f.path)


@use_case("read")
def download_run_artifacts(
    ctx: Context, run_id: str, dest: str | Path, *, path: str | None = None
) -> list[Path]:
    """Copy a run's files (or those under ``path``) to ``dest``, each verified by its digest.

    Args:
        ctx: where.
        run_id: the run's id or a unique prefix.
        dest: the folder to write into (created if missing); files keep their run paths.
        path: only this file or the files under this folder of the run.

    Returns:
        The written files.

    Raises:
        NotFoundError: no such run, or nothing of the run under ``path``.
        InputError: ``dest`` exists and is not a folder.
    """
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise InputError(f"--download takes a folder; {root} is a file")
    files = run_artifacts(ctx, run_id)
    if path is not None:
        prefix = path.strip("/")
        files = [f for f in files if f.path == prefix or f.path.startswith(prefix + "/")]
        if not files:
            raise NotFoundError(f"Run {run_id} has no artifact at {path!r}")
    written = []
    for f in files:
        relative = Path(f.path)
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(f"Run {run_id} names an unsafe artifact path {f.path!r}")
        written.append(ctx.workspace.artifacts.get_file(f.digest, root / relative))
    return written
