"""Encryption at rest of artifact blobs: AES-256-GCM in chunks, keyed from the settings.

An encrypted blob file is ``MAGIC | key id (8 bytes) | nonce prefix (8 bytes)`` followed by
records ``length (4 bytes, big-endian) | ciphertext and tag`` of at most 1 MiB of plaintext
each. Chunk ``i`` is sealed with the nonce ``prefix | i`` and the associated data
``key id | i | final``, so chunks cannot be reordered, dropped or cut off without the read
failing. The key id is the first 8 bytes of the key's sha256: a blob names the key it needs,
and rotation (``EncryptedArtifactStore.reencrypt``) finds blobs sealed with an older key.

Blobs keep their content address (the sha256 of the plaintext), so encrypting changes no
digest anywhere; a store opened with a key still reads blobs written before encryption was
turned on (``reencrypt`` seals them).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from forgeml.errors import ArtifactIntegrityError, InputError, NotFoundError
from forgeml.store._artifacts import _CHUNK, LocalArtifactStore

__all__ = [
    "MAGIC",
    "EncryptedArtifactStore",
    "PayloadCipher",
    "load_key",
    "open_payload",
    "read_key_file",
]

MAGIC = b"FMLENC1\n"
_HEADER = len(MAGIC) + 16
_LENGTH = struct.Struct(">I")


def load_key(text: str) -> bytes:
    """A 256-bit key from its text form: 64 hex characters or URL-safe base64 of 32 bytes.

    Raises:
        InputError: anything else.
    """
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(text + "==")
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InputError(
            "An encryption key is 32 bytes as 64 hex characters or URL-safe base64 "
            "(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


def key_id(key: bytes) -> bytes:
    """The 8 bytes a blob names its key by."""
    return hashlib.sha256(key).digest()[:8]


def _aad(kid: bytes, index: int, final: bool) -> bytes:
    return kid + struct.pack(">Q?", index, final)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


class _Decrypting(io.RawIOBase):
    """The plaintext of an encrypted blob file, decrypted chunk by chunk as it is read."""

    def __init__(self, raw: BinaryIO, keys: dict[bytes, bytes], where: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._raw, self._where = raw, where
        header = raw.read(_HEADER)
        kid, self._prefix = header[len(MAGIC) : len(MAGIC) + 8], header[len(MAGIC) + 8 :]
        key = keys.get(kid)
        if key is None:
            raw.close()
            raise ArtifactIntegrityError(
                f"{where} is encrypted with a key this workspace was not given "
                "(FORGEML_ENCRYPTION_KEY or FORGEML_ENCRYPTION_KEY_FILE)"
            )
        self._kid, self._aes = kid, AESGCM(key)
        self._index, self._buffer, self._done = 0, b"", False

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes:
        size = self._raw.read(_LENGTH.size)
        if len(size) != _LENGTH.size:
            raise ArtifactIntegrityError(f"{self._where} is cut short (no final chunk)")
        sealed = self._raw.read(_LENGTH.unpack(size)[0])
        nonce = _nonce(self._prefix, self._index)
        for final in (False, True):
            try:
                plain = self._aes.decrypt(nonce, sealed, _aad(self._kid, self._index, final))
            except Exception:  # cryptography's InvalidTag: wrong key, bytes or position
                continue
            self._index += 1
            self._done = final
            return plain
        raise ArtifactIntegrityError(f"{self._where} does not decrypt: its bytes were changed")

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._done:
            self._buffer = self._next()
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class EncryptedArtifactStore(LocalArtifactStore):
    """A local artifact store whose blob files are sealed with AES-256-GCM.

    Args:
        root: the store's folder.
        key: the key new blobs are sealed with (32 bytes).
        old_keys: keys of blobs sealed before a rotation (read, never written).
    """

    def __init__(
        self, root: str | os.PathLike[str], key: bytes, old_keys: Sequence[bytes] = ()
    ) -> None:
        super().__init__(root)
        self._key = key
        self._kid = key_id(key)
        self._keys = {key_id(k): k for k in (*old_keys, key)}

    @property
    def key_id(self) -> str:
        """The current key's id (hex), as blob files name it."""
        return self._kid.hex()

    def with_old_keys(self, old_keys: Sequence[bytes]) -> EncryptedArtifactStore:
        """The same store, also reading blobs sealed with ``old_keys``."""
        return EncryptedArtifactStore(self.root, self._key, [*old_keys, *self._keys.values()])

    def _write_stream(self, stream: BinaryIO) -> tuple[str, int]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aes = AESGCM(self._key)
        prefix = os.urandom(8)
        hasher = hashlib.sha256()
        size = index = 0
        tmp = self.root / "tmp" / f"{uuid.uuid4().hex}.part"
        try:
            with open(tmp, "wb") as out:
                out.write(MAGIC + self._kid + prefix)
                chunk = stream.read(_CHUNK)
                while True:
                    following = stream.read(_CHUNK) if chunk else b""
                    final = not following
                    hasher.update(chunk)
                    size += len(chunk)
                    sealed = aes.encrypt(
                        _nonce(prefix, index), chunk, _aad(self._kid, index, final)
                    )
                    out.write(_LENGTH.pack(len(sealed)) + sealed)
                    index += 1
                    if final:
                        break
                    chunk = following
                out.flush()
                os.fsync(out.fileno())
            digest = hasher.hexdigest()
            final_path = self.path(digest)
            final_path.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest, size

    def _open(self, digest: str) -> BinaryIO:
        raw = super()._open(digest)
        if raw.read(len(MAGIC)) != MAGIC:  # written before encryption was turned on
            raw.seek(0)
            return raw
        raw.seek(0)
        return io.BufferedReader(_Decrypting(raw, self._keys, self.describe(digest)), _CHUNK)  # type: ignore[return-value]

    def blobs(self) -> Iterator[str]:
        """The digest of every stored blob."""
        for path in sorted((self.root / "sha256").glob("*/*")):
            if path.is_file():
                yield path.name

    def sealed_with_current_key(self, digest: str) -> bool:
        """Whether a blob file is encrypted with the current key."""
        try:
            with open(self.path(digest), "rb") as f:
                header = f.read(_HEADER)
        except FileNotFoundError:
            raise NotFoundError(f"No blob {digest} in the artifact store {self.root}") from None
        return header[: len(MAGIC)] == MAGIC and header[len(MAGIC) : len(MAGIC) + 8] == self._kid

    def reencrypt(self) -> tuple[int, int]:
        """Seal every blob not sealed with the current key (plaintext ones and those of old
        keys) with it, each verified against its digest and replaced atomically.

        Returns:
            (blobs re-encrypted, blobs already current).
        """
        changed = current = 0
        for digest in self.blobs():
            if self.sealed_with_current_key(digest):
                current += 1
                continue
            with self._verified_chunks(digest) as chunks:
                data = b"".join(chunks)
            written, _ = self._write_stream(io.BytesIO(data))
            if written != digest:  # cannot happen: verified above
                raise ArtifactIntegrityError(f"Blob {digest} re-encrypted to another digest")
            changed += 1
        return changed, current


def read_key_file(path: Path) -> str:
    """The first line of a key file."""
    try:
        lines = path.expanduser().read_text(encoding="utf-8").strip().splitlines()
    except OSError as e:
        raise InputError(f"Cannot read the encryption key file {path}: {e.strerror}") from None
    return lines[0] if lines else ""


PAYLOAD_PREFIX = "fmlenc1:"


class PayloadCipher:
    """Seals short texts (the prediction log's stored payloads, its journal lines) with
    AES-256-GCM: ``fmlenc1:<key id hex>:<base64 of nonce | ciphertext and tag>``.

    The associated data binds a payload to where it is stored (column and request id), so a
    sealed payload copied to another row does not decrypt. Text without the prefix (stored
    before encryption was turned on) reads as it is.

    Args:
        key: the key new payloads are sealed with (32 bytes).
        old_keys: keys of payloads sealed before a rotation (read, never written).
    """

    def __init__(self, key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._kid = key_id(key)
        self._head = f"{PAYLOAD_PREFIX}{self._kid.hex()}:"
        self._aes = AESGCM(key)
        self._keys = {key_id(k): AESGCM(k) for k in (*old_keys, key)}

    @property
    def key_id(self) -> str:
        return self._kid.hex()

    def with_old_keys(self, old_keys: Sequence[bytes]) -> PayloadCipher:
        """The same cipher, also opening payloads sealed with ``old_keys``."""
        cipher = PayloadCipher.__new__(PayloadCipher)
        cipher._kid, cipher._head, cipher._aes = self._kid, self._head, self._aes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        cipher._keys = {**{key_id(k): AESGCM(k) for k in old_keys}, **self._keys}
        return cipher

    def seal(self, text: str, aad: bytes) -> str:
        """``text`` sealed with the current key."""
        nonce = os.urandom(12)
        sealed = self._aes.encrypt(nonce, text.encode(), aad)
        return self._head + base64.b64encode(nonce + sealed).decode("ascii")

    def is_current(self, text: str) -> bool:
        """Whether ``text`` is sealed with the current key."""
        return text.startswith(self._head)

    def open(self, text: str, aad: bytes, where: str) -> str:
        """The plaintext of a payload (a plaintext payload as it is).

        Raises:
            ArtifactIntegrityError: sealed with a key this cipher was not given, or changed.
        """
        if not text.startswith(PAYLOAD_PREFIX):
            return text
        _, kid_hex, body = text.split(":", 2)
        try:
            aes = self._keys.get(bytes.fromhex(kid_hex))
        except ValueError:
            aes = None
        if aes is None:
            raise ArtifactIntegrityError(
                f"{where} is encrypted with a key this workspace was not given "
                "(FORGEML_ENCRYPTION_KEY or FORGEML_ENCRYPTION_KEY_FILE; after a rotation, "
                "forgeml artifacts reencrypt --old-key-file OLD)"
            )
        try:
            raw = base64.b64decode(body)
            return aes.decrypt(raw[:12], raw[12:], aad).decode()
        except Exception:  # InvalidTag, bad base64: changed bytes or another row's payload
            raise ArtifactIntegrityError(
                f"{where} does not decrypt: its bytes were changed"
            ) from None


def open_payload(cipher: PayloadCipher | None, text: str | None, aad: bytes, where: str) -> Any:
    """``text`` opened with ``cipher``; a sealed payload without a cipher is refused."""
    if text is None:
        return None
    if cipher is not None:
        return cipher.open(text, aad, where)
    if text.startswith(PAYLOAD_PREFIX):
        raise ArtifactIntegrityError(
            f"{where} is encrypted and this workspace has no encryption key "
            "(FORGEML_ENCRYPTION_KEY or FORGEML_ENCRYPTION_KEY_FILE)"
        )
    return text
