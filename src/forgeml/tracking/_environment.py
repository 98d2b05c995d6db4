"""What a run records about where it ran: the code revision and the environment."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata

__all__ = ["code_revision", "environment"]

_KEY_PACKAGES = (
    "forgeml",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "lightgbm",
    "xgboost",
    "xgboost-cpu",
    "optuna",
    "sqlalchemy",
)


@functools.cache
def environment() -> dict[str, object]:
    """Python, platform and the versions of the packages a model's behaviour depends on."""
    packages = {}
    for name in _KEY_PACKAGES:
        try:
            # the CPU-only wheel "xgboost-cpu" is recorded as xgboost
            packages[name.removesuffix("-cpu")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executable": sys.executable,
        "packages": packages,
    }


def code_revision(cwd: str | None = None) -> tuple[str | None, bool | None]:
    """The git commit of the working directory and whether tracked files changed since.

    Returns (None, None) outside a git checkout or when git is unavailable.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or None, dirty
