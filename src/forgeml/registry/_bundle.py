"""The model bundle: a folder stored as one tree blob in the artifact store.

::

    model.json          manifest: name, version, flavor, task, signature, output classes,
                        metrics, lineage, requirements, and the sha256 of every other file
    model.txt | model.ubj | model.skops | model.joblib     the model (see ``_flavors``)
    reference.parquet   a seeded sample of the training data: the drift baseline
    profile.json        the profile of the training data, when known
    card.md             the model card

Reading is verify-first: the registry records the tree's digest; the tree blob is checked
against it, ``model.json`` against the tree, every file against both, and only then is any byte
deserialized. A mismatch anywhere raises ``ArtifactIntegrityError``.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from forgeml._json import dumps
from forgeml.errors import ArtifactIntegrityError, InputError
from forgeml.registry._flavors import FLAVORS, Flavor
from forgeml.store import ArtifactStore, TreeEntry

__all__ = [
    "BUNDLE_FORMAT",
    "MANIFEST",
    "StagedBundle",
    "UnsafeModelError",
    "VerifiedBundle",
    "read_bundle",
    "stage",
]

_log = logging.getLogger("forgeml.registry")


class UnsafeModelError(InputError):
    """The model file is a pickle and the caller did not say it trusts it."""


BUNDLE_FORMAT = "forgeml.model/1"
MANIFEST = "model.json"
REFERENCE = "reference.parquet"
PROFILE = "profile.json"
CARD = "card.md"
REFERENCE_ROWS = 10_000
_MODULES = {"scikit-learn": "sklearn"}
_PACKAGES = {
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost",),
    "sklearn": ("scikit-learn", "skops"),
}


def _dumps(value: Any) -> bytes:
    return dumps(value, indent=True, sort_keys=True, lenient=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def requirements(flavor: str, spec: dict[str, Any]) -> dict[str, str]:
    """Packages (with the versions that saved the model) needed to load and run it."""
    names = ["forgeml", "numpy", "pandas", *_PACKAGES.get(flavor, ())]
    types = [str(spec.get("estimator", "")), *spec.get("trusted_types", [])]
    for module, dist in (("lightgbm", "lightgbm"), ("xgboost", "xgboost")):
        if any(t.split(".")[0] == module for t in types) and dist not in names:
            names.append(dist)
    found = {"python": platform.python_version()}
    for name in names:
        # the imported module's own version first: a distribution can be installed under
        # another name (xgboost-cpu) next to a stale record of the usual one
        loaded = sys.modules.get(_MODULES.get(name, name))
        version = getattr(loaded, "__version__", None)
        if version is None:
            try:
                version = importlib_metadata.version(name)
            except importlib_metadata.PackageNotFoundError:
                continue
        found[name] = str(version)
    return found


@dataclass
class StagedBundle:
    """A bundle written to a temporary folder, waiting for its name and version number."""

    folder: Path
    flavor: Flavor
    manifest: dict[str, Any]
    render_card: Callable[[dict[str, Any]], str]

    def finish(self, name: str, version: int, artifacts: ArtifactStore) -> tuple[str, int]:
        """Write the card and the manifest for ``name@version`` and store the folder.

        Returns:
            (digest of the bundle's tree blob, total bytes of its files).
        """
        manifest = {**self.manifest, "name": name, "version": version}
        (self.folder / CARD).write_text(self.render_card(manifest), encoding="utf-8")
        files = {}
        for path in sorted(p for p in self.folder.iterdir() if p.is_file()):
            if path.name != MANIFEST:
                files[path.name] = {"sha256": _sha256(path), "size": path.stat().st_size}
        manifest["files"] = files
        (self.folder / MANIFEST).write_bytes(_dumps(manifest))
        digest = artifacts.put_dir(self.folder)
        size = sum(e.size for e in artifacts.tree(digest))
        return digest, size

    def cleanup(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.folder, ignore_errors=True)


def stage(
    model: Any,
    flavor: Flavor,
    *,
    manifest: dict[str, Any],
    reference: pd.DataFrame | None,
    profile: dict[str, Any] | None,
    check: pd.DataFrame | None,
    render_card: Callable[[dict[str, Any]], str],
) -> StagedBundle:
    """Write the model, reference sample and profile to a temporary folder.

    Args:
        model: the fitted model.
        flavor: its flavor.
        manifest: the manifest's fields known before registration (no name, version, files).
        reference: training rows to sample the drift baseline from.
        profile: the training data's profile document.
        check: rows the reloaded model must predict identically on (else a safer format is
            abandoned for the next one).
        render_card: renders ``card.md`` from the final manifest.
    """
    folder = Path(tempfile.mkdtemp(prefix="forgeml-bundle-"))
    try:
        spec = flavor.save(model, folder, check=check)
        body = {
            "format": BUNDLE_FORMAT,
            **manifest,
            "flavor": flavor.name,
            "model": spec,
            "requirements": requirements(flavor.name, spec),
        }
        if reference is not None and len(reference):
            sample = reference
            if len(sample) > REFERENCE_ROWS:
                sample = sample.sample(n=REFERENCE_ROWS, random_state=0).sort_index()
            sample.reset_index(drop=True).to_parquet(folder / REFERENCE, index=False)
            body["reference"] = {"file": REFERENCE, "rows": len(sample), "of_rows": len(reference)}
        if profile is not None:
            (folder / PROFILE).write_bytes(_dumps(profile))
        return StagedBundle(folder, flavor, body, render_card)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@dataclass
class VerifiedBundle:
    """A bundle whose every file was checked against the registry's digest."""

    digest: str
    manifest: dict[str, Any]
    entries: dict[str, TreeEntry] = field(repr=False)
    artifacts: ArtifactStore = field(repr=False)

    def read_bytes(self, name: str) -> bytes:
        """The verified bytes of one file of the bundle."""
        return self.artifacts.get_bytes(self.entries[name].digest)

    def has(self, name: str) -> bool:
        """Whether the bundle holds the file ``name``."""
        return name in self.entries

    @property
    def uses_pickle(self) -> bool:
        """Whether loading the model runs pickle (a ``joblib`` model file)."""
        spec = self.manifest.get("model") or {}
        return spec.get("format") == "joblib" or bool(spec.get("unsafe_format"))

    def load_model(self, *, trust_pickle: bool = False) -> Any:
        """Deserialize the model (its file was verified when the bundle was read).

        Args:
            trust_pickle: allow a pickled (``joblib``) model file, which runs code when
                loaded; without it such a bundle is refused.

        Raises:
            UnsafeModelError: the model file is a pickle and ``trust_pickle`` is false.
            ArtifactIntegrityError: the manifest names an unknown flavor.
        """
        spec = self.manifest["model"]
        flavor = FLAVORS.get(self.manifest.get("flavor", ""))
        if flavor is None:
            raise ArtifactIntegrityError(f"Bundle {self.digest} names an unknown flavor")
        if self.uses_pickle:
            ref = f"{self.manifest.get('name')}@{self.manifest.get('version')}"
            if not trust_pickle:
                raise UnsafeModelError(
                    f"{ref} is stored with joblib (pickle), which runs code when it is loaded; "
                    "load it with trust_pickle=True (--trust-pickle) only if you trust whoever "
                    "registered it"
                )
            _log.warning("%s: loading a pickled (joblib) model file, trusted by the caller", ref)
        with tempfile.TemporaryDirectory(prefix="forgeml-load-") as tmp:
            path = Path(tmp) / spec["file"]
            self.artifacts.get_file(self.entries[spec["file"]].digest, path)
            return flavor.load(path, spec)


def read_bundle(artifacts: ArtifactStore, digest: str) -> VerifiedBundle:
    """Read and verify a bundle; nothing in it is deserialized except the JSON manifest.

    Args:
        artifacts: the artifact store.
        digest: the bundle's tree digest as recorded in the registry.

    Raises:
        ArtifactIntegrityError: a file, the manifest or the tree does not match its digest, or
            the manifest and the tree disagree about the files.
    """
    entries = {e.path: e for e in artifacts.tree(digest)}  # the tree is checked against digest
    if MANIFEST not in entries:
        raise ArtifactIntegrityError(f"Bundle {digest} has no {MANIFEST}")
    for entry in entries.values():  # every byte of every file, before any is deserialized
        artifacts.verify(entry.digest)
    raw = artifacts.get_bytes(entries[MANIFEST].digest)
    try:
        manifest = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ArtifactIntegrityError(f"The manifest of bundle {digest} is not JSON") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    listed = set(files) if isinstance(files, dict) else set()
    present = set(entries) - {MANIFEST}
    if listed != present:
        raise ArtifactIntegrityError(
            f"Bundle {digest}: the manifest lists {sorted(listed)} but the bundle holds "
            f"{sorted(present)}"
        )
    for name in present:
        assert isinstance(files, dict)  # ``present`` is empty otherwise
        if files[name].get("sha256") != entries[name].digest:
            raise ArtifactIntegrityError(
                f"Bundle {digest}: {name} does not match the sha256 its manifest records"
            )
    return VerifiedBundle(digest, manifest, entries, artifacts)
