"""Content-addressed artifact storage: blobs named by the sha256 of their bytes.

A folder is stored as its files' blobs plus a *tree* blob: a JSON manifest listing each file's
relative path, digest and size. The folder's digest is the digest of its tree, so identical
folders are stored once as well.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from forgeml._json import dumps
from forgeml.errors import ArtifactIntegrityError, InputError, NotFoundError, WorkspaceError

__all__ = ["ArtifactStore", "LocalArtifactStore", "TreeEntry", "sha256_file"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_TREE_FORMAT = "forgeml.tree/1"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_digest(digest: str) -> str:
    """Validate a digest (64 lowercase hex characters) so it can never name another path."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InputError(f"A blob digest is 64 lowercase hex characters (sha256); got {digest!r}")
    return digest


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file of a stored folder."""

    path: str
    digest: str
    size: int


class ArtifactStore(ABC):
    """Content-addressed blob storage.

    Contract for every back end:
        * ``put_*`` returns the lowercase hex sha256 of the content; identical content is stored
          once; a write is atomic (a reader sees the whole blob or none).
        * ``get_*`` verify the bytes against the digest while reading and raise
          ``ArtifactIntegrityError`` naming the blob when they differ: wrong bytes are never
          returned or left at a destination.
        * ``NotFoundError`` means no blob has that digest.
        * Safe to use from several threads and processes at once.

    A back end implements ``_write_stream``, ``_open`` and ``exists``; the rest is shared.
    """

    # -- primitives a back end provides ------------------------------------------------------

    @abstractmethod
    def _write_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a stream's bytes; return (digest, size)."""

    @abstractmethod
    def _open(self, digest: str) -> BinaryIO:
        """Open a blob for reading, unverified. Raise NotFoundError if absent."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""

    @abstractmethod
    def size(self, digest: str) -> int:
        """The size in bytes of a stored blob."""

    # -- built on the primitives -------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their digest."""
        import io

        return self._write_stream(io.BytesIO(data))[0]

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store a file's bytes; return their digest."""
        source = Path(path)
        if not source.is_file():
            raise InputError(f"No file at {source}")
        with open(source, "rb") as f:
            return self._write_stream(f)[0]

    def put_dir(self, path: str | os.PathLike[str]) -> str:
        """Store a folder (every file under it, recursively); return the digest of its tree."""
        root = Path(path)
        if not root.is_dir():
            raise InputError(f"No folder at {root}")
        entries = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            with open(file, "rb") as f:
                digest, size = self._write_stream(f)
            entries.append(
                {"path": file.relative_to(root).as_posix(), "digest": digest, "size": size}
            )
        manifest = {"format": _TREE_FORMAT, "files": entries}
        return self.put_bytes(dumps(manifest, sort_keys=True))

    def put(self, path: str | os.PathLike[str]) -> tuple[str, str]:
        """Store a file or a folder; return (digest, kind) with kind ``"file"`` or ``"dir"``."""
        target = Path(path)
        if target.is_dir():
            return self.put_dir(target), "dir"
        return self.put_file(target), "file"

    @contextmanager
    def _verified_chunks(self, digest: str) -> Iterator[Iterator[bytes]]:
        check_digest(digest)
        with self._open(digest) as stream:
            hasher = hashlib.sha256()

            def chunks() -> Iterator[bytes]:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
                    yield chunk
                if hasher.hexdigest() != digest:
                    raise ArtifactIntegrityError(
                        f"Blob {digest} is corrupt: its bytes hash to {hasher.hexdigest()}"
                        f" ({self.describe(digest)})"
                    )

            yield chunks()

    def get_bytes(self, digest: str) -> bytes:
        """The verified bytes of a blob."""
        with self._verified_chunks(digest) as chunks:
            return b"".join(chunks)

    def get_file(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Copy a blob to ``dest`` after verifying it; nothing is left at ``dest`` on failure."""
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self._verified_chunks(digest) as chunks:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def tree(self, digest: str) -> list[TreeEntry]:
        """The files of a stored folder."""
        try:
            manifest = orjson.loads(self.get_bytes(digest))
        except orjson.JSONDecodeError:
            raise InputError(f"Blob {digest} is a file, not a folder") from None
        if not isinstance(manifest, dict) or manifest.get("format") != _TREE_FORMAT:
            raise InputError(f"Blob {digest} is a file, not a folder")
        return [TreeEntry(e["path"], e["digest"], e["size"]) for e in manifest["files"]]

    def get_dir(self, digest: str, dest: str | os.PathLike[str]) -> Path:
        """Rebuild a stored folder at ``dest`` (verified file by file)."""
        root = Path(dest)
        for entry in self.tree(digest):
            relative = Path(entry.path)
            if relative.is_absolute() or ".." in relative.parts:
                raise ArtifactIntegrityError(f"Tree {digest} names an unsafe path {entry.path!r}")
            self.get_file(entry.digest, root / relative)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def verify(self, digest: str) -> None:
        """Read a blob through and raise ``ArtifactIntegrityError`` if it is corrupt."""
        with self._verified_chunks(digest) as chunks:
            for _ in chunks:
                pass

    def describe(self, digest: str) -> str:
        """Where a blob lives, for messages."""
        return f"blob {digest}"


class LocalArtifactStore(ArtifactStore):
    """Blobs as read-only files under ``root/sha256/<2 hex>/<digest>``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        try:
            (self.root / "sha256").mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WorkspaceError(f"Cannot create the artifact store at {self.root}: {e}") from e

    def path(self, digest: str) -> Path:
        """The file that holds a blob."""
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest

    def describe(self, digest: str) -> str:
        return f"file {self.path(digest)}"

    def _write_stream(self, stream: BinaryIO) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        tmp = self.root / "tmp" / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            final = self.path(digest)
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)
            # Atomic: readers see the old blob or the whole new one. Replacing an existing blob
            # (same digest) also repairs one whose bytes were damaged.
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest, size

    def _open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"No blob {digest} in the artifact store {self.root}") from None

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"No blob {digest} in the artifact store {self.root}") from None
