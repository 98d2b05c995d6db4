"""Secrets stay secret: API keys, the admin token and store passwords appear in no output, log,
error message, /metrics answer, stored row or artifact (every output is grepped for them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import lightgbm as lgb
import pandas as pd

import forgeml as fm
from forgeml.config import Settings
from forgeml.serve import ServeOptions
from forgeml.store import Workspace

from .conftest import make_keys

ADMIN_TOKEN = "adm1n-T0KEN-never-shown-4f7c"
PASSWORD = "pgPassw0rd-never-shown-9b1e"


def _files_text(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def _cli(*args: str, home: Path, key: str | None = None, **env: str):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORGEML_")}
    environment.update({"FORGEML_HOME": str(home), "COLUMNS": "200", **env})
    if key is not None:
        environment["FORGEML_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "forgeml", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def test_no_output_log_metric_or_stored_byte_holds_a_secret(
    tmp_path: Path, adult_numeric: pd.DataFrame
) -> None:
    home = tmp_path / "ws"
    ws = Workspace(Settings(home=home))
    X, y = adult_numeric.drop(columns=["income"]), adult_numeric["income"]
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, random_state=0, verbose=-1)
    fm.register(model.fit(X, y), name="adult-gbm", sample=X, workspace=ws, actor="setup")
    fm.registry.promote("adult-gbm", 1, workspace=ws, actor="setup")
    keys = make_keys(ws)
    ws.close()
    # a token is fml_<12-hex id>_<43-character secret>; the secret itself may hold '_'
    secrets = [*keys.tokens.values(), *(t[len("fml_") + 13 :] for t in keys.tokens.values())]
    assert all(len(s) == 43 for s in secrets[len(keys.tokens) :])
    secrets += [ADMIN_TOKEN, PASSWORD]
    outputs: list[str] = []

    admin, viewer = keys.tokens["admin"], keys.tokens["viewer"]
    # the one output that shows a key: its creation (so the grep below does find keys)
    shown = _cli("keys", "create", "--role", "viewer", "--name", "shown", home=home, key=admin)
    token = shown.stdout.strip().splitlines()[-1]
    assert token.startswith("fml_") and "Shown once" in shown.stderr
    secrets.append(token)
    for args, key in [
        (("keys", "list"), admin),
        (("keys", "list", "--json"), admin),
        (("audit", "list", "--json"), admin),
        (("audit", "export"), admin),
        (("audit", "verify"), admin),
        (("models", "list", "--json"), viewer),
        (("keys", "list"), viewer),  # refused
        (("models", "list"), viewer[:-3] + "xyz"),  # a wrong key
        (("init", "--json"), admin),
    ]:
        done = _cli(*args, home=home, key=key)
        outputs += [done.stdout, done.stderr]
    # a store URL with a password: neither the failure nor the traceback-free line shows it
    url = f"postgresql+psycopg://forgeml:{PASSWORD}@127.0.0.1:1/nothing"
    failed = _cli("--store-url", url, "models", "list", home=home, key=admin)
    assert failed.returncode != 0
    outputs += [failed.stdout, failed.stderr]
    debug = _cli("--store-url", url, "models", "list", home=home, key=admin, FORGEML_DEBUG="1")
    outputs += [debug.stdout, debug.stderr]

    # a real server (a deployer key starts it; the admin token is in the environment), with
    # its access log on: requests with good, wrong and refused keys, errors, /metrics
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORGEML_")}
    environment.update(
        FORGEML_HOME=str(home),
        FORGEML_API_KEY=keys.tokens["deployer"],
        FORGEML_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "forgeml", "serve", "adult-gbm@production", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, server)
        row = X.iloc[:1].to_dict(orient="records")
        calls = [
            ("GET", "/metrics", admin, None),
            ("POST", "/v1/models/adult-gbm/predict", viewer, {"records": row}),
            ("POST", "/v1/models/adult-gbm/predict", viewer, {"records": [{"age": "x"}]}),
            ("GET", "/admin/routes", viewer, None),
            ("GET", "/admin/routes", ADMIN_TOKEN, None),
            ("GET", "/admin/routes", viewer[:-3] + "abc", None),
            ("PUT", "/admin/models/adult-gbm/route", admin, {"split": {"9": 1}}),
            ("GET", "/v1/models", None, None),
            ("GET", "/metrics", admin, None),
        ]
        for method, path, key, body in calls:
            headers = {} if key is None else {"Authorization": f"Bearer {key}"}
            answer = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
            assert answer.status_code < 500, answer.text
            outputs += [answer.text, json.dumps(dict(answer.headers))]
            if path.endswith("/predict") and answer.status_code == 200:
                request_id = answer.json()["request_id"]
        # feedback and its correction: refused, wrong, written once, corrected
        deployer = keys.tokens["deployer"]
        labels = {"request_id": request_id, "labels": [">50K"]}
        fixed = {**labels, "labels": ["<=50K"], "reason": "re-checked"}
        for path, key, body in [
            ("/v1/feedback", viewer, labels),  # 403
            ("/v1/feedback", deployer, labels),
            ("/v1/feedback", deployer, labels),  # 409: written once
            ("/v1/feedback/corrections", viewer[:-3] + "abc", fixed),  # 401
            ("/v1/feedback/corrections", deployer, {**fixed, "reason": 7}),  # 400
            ("/v1/feedback/corrections", deployer, fixed),
            ("/metrics", admin, None),
        ]:
            answer = httpx.request(
                "GET" if body is None else "POST",
                base + path,
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert answer.status_code < 500, answer.text
            outputs += [answer.text, json.dumps(dict(answer.headers))]
        assert answer.status_code == 200 and "forgeml_requests" in answer.text
    finally:
        server.terminate()
        out, err = server.communicate(timeout=60)
    outputs += [out, err]
    assert '"path": "/admin/routes"' in err or "/admin/routes" in err  # the access log ran

    # the label history, a tracked training run (its parameters, configuration and artifacts
    # are stored and grepped below) and reports: a data report, a served-model report
    table = tmp_path / "adult.csv"
    adult_numeric.to_csv(table, index=False)
    reports = [tmp_path / "data.html", tmp_path / "monitor.html"]
    for args in [
        ("feedback", "history", request_id, "--json"),
        ("data", "add", str(table), "--name", "adult", "--target", "income", "--json"),
        ("train", "adult", "--time-budget", "2", "--models", "lgbm", "--trials", "2", "--json"),
        ("runs", "list", "--json"),
        ("data", "report", "adult", "--html", str(reports[0])),
        ("monitor", "report", "adult-gbm@production", "-w", "100", "--html", str(reports[1])),
    ]:
        done = _cli(*args, home=home, key=admin)
        assert done.returncode == 0, (args, done.stderr)
        outputs += [done.stdout, done.stderr]
    history = json.loads(outputs[-12])
    assert [h["labels"] for h in history] == [[">50K"], ["<=50K"]]
    outputs += [p.read_text(encoding="utf-8") for p in reports]

    stored = _files_text(home)
    options = ServeOptions(models=("m@1",), admin_token=ADMIN_TOKEN)
    outputs += [repr(options), str(options), repr(Settings(api_key=admin))]
    text = "\n".join(outputs)
    for secret in secrets:
        assert secret not in text, f"a secret appears in an output: {secret[:6]}..."
        assert secret.encode() not in stored, f"a secret is stored: {secret[:6]}..."


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.communicate()[1])
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")
