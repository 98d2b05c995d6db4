"""The registry across real processes: concurrent registration, loading in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pandas as pd
import pytest

from forgeml import registry
from forgeml.config import Settings
from forgeml.store import Workspace

REGISTER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from sklearn.linear_model import LogisticRegression
    from forgeml import registry
    from forgeml.config import Settings
    from forgeml.store import Workspace

    url, artifacts, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ws = Workspace(Settings(home=artifacts, store_url=url, artifacts=artifacts))
    rng = np.random.default_rng(worker)
    X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    y = (X["a"] > 0).astype(int)
    for i in range(2):
        model = LogisticRegression(C=1.0 + worker + i / 10).fit(X, y)
        v = registry.register(model, name="shared", sample=X, workspace=ws)
        print(v.version, worker, i, flush=True)
    ws.close()
    """
)


def _python(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


@pytest.mark.slow
def test_eight_processes_get_distinct_gap_free_versions(store_url, tmp_path):
    # A fresh store: the processes also race to create the schema and the model's row.
    procs = [_python(REGISTER, store_url, str(tmp_path / "a"), str(w)) for w in range(8)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    lines = [line.split() for out, _ in outputs for line in out.splitlines()]
    versions = sorted(int(v) for v, _, _ in lines)
    assert versions == list(range(1, 17))
    ws = Workspace(Settings(home=tmp_path / "a", store_url=store_url, artifacts=tmp_path / "a"))
    try:
        assert ws.models.get_model("shared").latest_version == 16
        registered = [e.version for e in ws.models.history("shared") if e.kind == "registered"]
        assert sorted(registered) == list(range(1, 17))
        # each number holds the bundle its own process wrote (name, version and model agree)
        for version, worker, i in lines:
            loaded = registry.load(f"shared@{version}", workspace=ws)
            assert loaded.metadata["version"] == int(version)
            expected_c = 1.0 + int(worker) + int(i) / 10
            assert loaded.model.get_params()["C"] == expected_c  # the model its process fitted
    finally:
        ws.close()


def test_moving_an_alias_never_leaves_a_reader_without_a_version(workspace, tiny, tiny_model):
    X, _ = tiny
    for _ in range(2):
        registry.register(tiny_model, name="m", sample=X, workspace=workspace)
    registry.promote("m", 1, alias="production", workspace=workspace)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                seen.append(workspace.models.resolve("m", "production").version)
        except BaseException as e:  # any failure to resolve is the bug under test
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(60):
            registry.promote(
                "m", 2 - i % 2, alias="production", reason=f"flip {i}", workspace=workspace
            )
        loads = {registry.load("m@production", workspace=workspace).version for _ in range(4)}
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert len(seen) > 60 and set(seen) == {1, 2}
    assert loads <= {1, 2}
    moves = registry.history("m", alias="production", workspace=workspace)
    assert len(moves) == 61
    assert all(e.from_version in (None, 1, 2) and e.to_version in (1, 2) for e in moves)


LOAD_AND_PREDICT = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from forgeml import registry
    from forgeml.config import Settings
    from forgeml.store import Workspace

    home, ref, rows, out = sys.argv[1:5]
    ws = Workspace(Settings(home=home))
    model = registry.load(ref, workspace=ws, for_serving=True)
    X = pd.read_pickle(rows)
    np.save(out + ".pred.npy", model.predict(X), allow_pickle=True)
    if model.task != "regression":
        np.save(out + ".proba.npy", model.predict_proba(X))
    print(model.metadata["flavor"], model.metadata["model"]["format"])
    """
)


def _pipeline(X):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = X.select_dtypes("number").columns.tolist()
    categorical = [c for c in X.columns if c not in numeric]
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    return Pipeline([("pre", pre), ("model", HistGradientBoostingClassifier(max_iter=30))])


def _models(adult):
    import lightgbm as lgb
    import xgboost as xgb

    X = adult.drop(columns="income")
    y = adult["income"]
    categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    X_cat = X.astype({c: "category" for c in categorical})
    y01 = (y == ">50K").astype(int)
    return {
        "lightgbm": (lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(X_cat, y), X_cat),
        "xgboost": (
            xgb.XGBClassifier(n_estimators=30, enable_categorical=True, tree_method="hist").fit(
                X_cat, y01
            ),
            X_cat,
        ),
        "sklearn": (_pipeline(X).fit(X, y), X),
    }


@pytest.mark.slow
def test_a_loaded_model_predicts_exactly_what_the_fitted_one_did(sqlite_workspace, adult, tmp_path):
    ws = sqlite_workspace
    expected = {}
    procs = {}
    for flavor, (model, X) in _models(adult).items():
        v = registry.register(model, name=f"adult-{flavor}", sample=X, workspace=ws)
        assert v.flavor == flavor
        rows = tmp_path / f"{flavor}.pkl"
        X.to_pickle(rows)
        expected[flavor] = (model.predict(X), model.predict_proba(X))
        out = str(tmp_path / flavor)
        procs[flavor] = (_python(LOAD_AND_PREDICT, str(ws.home), v.ref, str(rows), out), out)
    formats = {}
    for flavor, (proc, out) in procs.items():
        stdout, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        formats[flavor] = stdout.split()
        pred, proba = expected[flavor]
        got = np.load(out + ".pred.npy", allow_pickle=True)
        assert np.array_equal(got, pred), flavor
        assert np.array_equal(np.load(out + ".proba.npy"), proba), flavor  # bit for bit
    assert formats == {
        "lightgbm": ["lightgbm", "lightgbm-text"],
        "xgboost": ["xgboost", "xgboost-ubj"],
        "sklearn": ["sklearn", "skops"],
    }


MOVE_ALIAS = textwrap.dedent(
    """
    import sys
    from forgeml.config import Settings
    from forgeml.store import Workspace

    url, home, worker, moves = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ws = Workspace(Settings(home=home, store_url=url, artifacts=home))
    for i in range(moves):
        ws.models.set_alias("m", "production", 1 + (worker + i) % 3, actor=f"w{worker}")
    ws.close()
    """
)


def test_eight_concurrent_alias_writers_give_a_history_in_commit_order(
    store_url, tmp_path, tiny, tiny_model
):
    home = tmp_path / "ws"
    ws = Workspace(Settings(home=home, store_url=store_url, artifacts=home))
    try:
        X, _ = tiny
        for _ in range(3):
            registry.register(tiny_model, name="m", sample=X, workspace=ws)
        procs = [_python(MOVE_ALIAS, store_url, str(home), str(w), "40") for w in range(8)]
        for p in procs:
            _out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err
        moves = ws.models.history("m", alias="production")
        assert len(moves) == 320
        # Each move's `from_version` is where the previous one (in history order) left it:
        # the history is the order in which the moves committed.
        previous = None
        broken = 0
        for event in moves:
            broken += event.from_version != previous
            previous = event.to_version
        assert broken == 0
        times = [e.at for e in moves]
        assert times == sorted(set(times))  # strictly increasing: every instant is exact
        # What the alias pointed at just after each commit, and just before the next one.
        wrong = sum(
            ws.models.alias_at("m", "production", e.at) != e.to_version
            or ws.models.alias_at("m", "production", e.at - 1) != e.from_version
            for e in moves
        )
        assert wrong == 0
        whole = ws.models.history("m")
        assert [e.at for e in whole] == sorted(e.at for e in whole)
    finally:
        ws.close()
