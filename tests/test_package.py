"""The package surface: README examples run, imports stay light, layers hold."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    (tmp_path / "model.txt").write_text("tree")
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "FORGEML_HOME": str(tmp_path / ".forgeml")},
        )
        assert result.returncode == 0, result.stderr


def test_import_forgeml_loads_no_heavy_library():
    heavy = ["sklearn", "alembic", "shap", "lightgbm", "xgboost", "optuna", "matplotlib", "torch"]
    code = f"import sys, forgeml\nprint([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_no_import_runs_up_the_layers():
    checker = ROOT.parent / "shared" / "hooks" / "layers.py"
    if not checker.is_file():
        import pytest

        pytest.skip(f"the layer checker {checker} is absent")
    result = subprocess.run(
        [sys.executable, str(checker), str(ROOT)], capture_output=True, text=True, check=True
    )
    assert result.stdout == ""
