"""Model serving: forgeml against a bare floor for each model it serves, and MLflow, with wrk.

Three models are fitted on UCI Adult (seed 0) and registered:

- ``lgbm``: an ``LGBMClassifier`` (100 trees, 31 leaves);
- ``xgb``: an ``XGBClassifier`` (100 trees, depth 6, native categorical handling);
- ``auto``: the model ``forgeml train`` returns on adult with a short budget (``--budget``,
  default 20 s), registered by the command itself.

Each is served, one server at a time, each in its own process on 127.0.0.1:

- forgeml: ``forgeml serve NAME@production`` with its defaults (input validation with per-request
  data quality, Prometheus metrics, prediction logging to the store and the JSON access log all
  on), asked on its native ``POST /v1/models/NAME/predict``; ``forgeml-no-access-log`` measures it
  once more without the access log; ``forgeml-mlflow`` asks the same server on MLflow's scoring
  protocol (``POST /invocations``, ``dataframe_records``: the route MLflow's users call) and
  ``forgeml-v2`` on the Open Inference Protocol (``POST /v2/models/NAME/infer``, one JSON tensor
  per column: what KServe's and Triton's clients send).
- floor (``serving_floor.py``): Starlette under Uvicorn, orjson, and the model's native
  predictor on the encoded row; no validation, no metrics, no logging: ``Booster.predict`` for
  ``lgbm``, ``inplace_predict`` for ``xgb`` and, for ``auto``, the model compiled by
  ``TrainedModel.compile_for_serving`` (the fastest way forgeml knows to call it).
- MLflow (``lgbm`` only): ``mlflow models serve --env-manager local`` with its default worker
  count. MLflow's lightgbm flavor rejects the text columns a JSON request carries for a model
  fitted on categories, so the saved lightgbm model is wrapped in a pyfunc that casts them to
  the training categories first (what an MLflow user has to do to serve this model).

wrk loads each server from outside its process with one real Adult row per request (a Lua
script counts non-2xx answers), for a bounded time per concurrency after an uncounted warm-up.
wrk runs on the same machine, so it competes with the server for the CPU. For context, the
in-process time of one row through each model's ``predict_proba`` on a one-row DataFrame is
printed too (median of 50 calls).

    python benchmarks/serving.py [--seconds 10] [--concurrency 1,8,32] [--workers 1]
    python benchmarks/serving.py --models xgb,auto --only forgeml,floor --concurrency 1,32
    python benchmarks/serving.py --soak 60        # forgeml (lgbm) at c=32 for 60 s, RSS sampled
    python benchmarks/serving.py --models auto --only forgeml,floor --concurrency 1 \
        --budget 600 --trials 6 --families lgbm,xgb  # a fixed auto model (two bags of XGBoost
                                                     # and one of LightGBM folds)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
BIN = Path(sys.executable).parent  # forgeml, mlflow and uvicorn of this environment
SERVERS = ("forgeml", "forgeml-no-access-log", "forgeml-mlflow", "forgeml-v2", "mlflow", "floor")
#: The forgeml servers compared with the floor, each by the route it is asked on.
FORGEML_ROUTES = {
    "forgeml": "native predict",
    "forgeml-mlflow": "MLflow /invocations",
    "forgeml-v2": "v2 infer",
}
MODELS = ("lgbm", "xgb", "auto")
FLOOR = Path(__file__).with_name("serving_floor.py")
WARM_UP = 2  # seconds of load before each measured point, not counted
WRK_TIMEOUT = "10s"  # a slow answer counts as slow, not as a socket error
READY_TIMEOUT = 180.0
TICKS = os.sysconf("SC_CLK_TCK")
DROPPED = "forgeml_prediction_log_dropped"
NOISE = 0.2  # cores busy outside the server and wrk above which a point is called noisy

LUA_TEMPLATE = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
  end
  io.write(string.format("non-2xx: %d\\n", total))
end
"""


@dataclass(frozen=True)
class Prepared:
    """The registered models, MLflow's copy of ``lgbm``, the floor's source and one request
    row per model."""

    folder: Path
    workspace: Path
    mlflow_model: Path | None
    floor_source: Path
    rows: dict[str, dict[str, Any]]
    notes: dict[str, str]


@dataclass(frozen=True)
class ServerSpec:
    key: str  # server kind and model: "forgeml:lgbm"
    label: str
    argv: list[str]
    path: str  # where the predictions are posted
    body: bytes
    ready: str  # answers 200 once the model is loaded
    note: str


@dataclass(frozen=True)
class Cpu:
    """Cores busy on average during a measurement, by whom."""

    server: float
    wrk: float
    other: float  # everything else on the machine: the measurement's noise


@dataclass(frozen=True)
class Point:
    """One wrk measurement."""

    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    requests: int
    cpu: Cpu
    dropped: float | None = None  # prediction records the forgeml server dropped


@dataclass
class Running:
    spec: ServerSpec
    port: int
    process: subprocess.Popen
    log: Path
    startup: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# -- the models -------------------------------------------------------------------------------

NAMES = {"lgbm": "adult-lgbm", "xgb": "adult-xgb", "auto": "adult-auto"}


def _prepare(
    folder: Path,
    console: Console,
    models: list[str],
    budget: int,
    mlflow: bool,
    trials: int | None = None,
    families: str | None = None,
) -> Prepared:
    import lightgbm
    import pandas as pd

    frame = pd.read_csv(DATASETS / "adult.csv").drop(columns=["split"])
    y = frame.pop("income")
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    X = frame.astype({c: "category" for c in categorical})
    shape = f"Adult, {len(X):,} rows x {X.shape[1]} columns ({len(categorical)} categorical)"
    # The first row of the file, as JSON gives it: Python numbers and strings, null if missing.
    row = json.loads(frame.head(1).to_json(orient="records"))[0]
    workspace = folder / "ws"
    notes: dict[str, str] = {}
    estimators: dict[str, Any] = {}
    mlflow_model = None
    if "lgbm" in models:
        started = time.perf_counter()
        model = lightgbm.LGBMClassifier(
            n_estimators=100, num_leaves=31, random_state=0, verbose=-1
        ).fit(X, y)
        notes["lgbm"] = (
            f"LGBMClassifier(n_estimators=100, num_leaves=31) fitted on {shape} in "
            f"{time.perf_counter() - started:.1f} s"
        )
        _register_forgeml(model, X, workspace, NAMES["lgbm"])
        estimators["lgbm"] = model
        if mlflow:
            mlflow_model = _save_mlflow(model, X, categorical, folder)
    if "xgb" in models:
        import xgboost

        started = time.perf_counter()
        model = xgboost.XGBClassifier(
            n_estimators=100,
            max_depth=6,
            enable_categorical=True,
            tree_method="hist",
            random_state=0,
        ).fit(X, (y == ">50K").astype(int))
        notes["xgb"] = (
            f"XGBClassifier(n_estimators=100, max_depth=6, enable_categorical=True) fitted on "
            f"{shape} in {time.perf_counter() - started:.1f} s"
        )
        _register_forgeml(model, X, workspace, NAMES["xgb"])
        estimators["xgb"] = model
    if "auto" in models:
        argv = [
            str(BIN / "forgeml"),
            "--home",
            str(workspace),
            "train",
            str(DATASETS / "adult.csv"),
        ]
        argv += ["--target", "income", "--drop", "split", "--time-budget", f"{budget}s"]
        argv += ["--seed", "0", "--register", NAMES["auto"], "--no-evaluate", "--json"]
        if trials is not None:  # the same model on a busy machine as on a quiet one
            argv += ["--trials", str(trials), "--max-latency-ms", "none"]
        if families is not None:
            argv += ["--models", families]
        extra = " ".join(argv[argv.index("--json") + 1 :])
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        trained = time.perf_counter() - started
        estimators["auto"] = _promote_latest(workspace, NAMES["auto"])
        notes["auto"] = (
            f"forgeml train adult.csv --target income --drop split --time-budget {budget}s "
            f"--seed 0 {extra}: {estimators['auto']!r} in {trained:.1f} s (command, start to "
            "end)"
        )
    for key, estimator in estimators.items():
        one = frame.head(1) if key == "auto" else X.head(1)
        notes[key] += (
            f"; predict_proba on a one-row DataFrame: {_one_row_ms(estimator, one):.2f} ms"
        )
    for key in models:
        console.print(f"{key}: {notes[key]}", markup=False)
    rows = {key: row for key in models}
    return Prepared(folder, workspace, mlflow_model, FLOOR, rows, notes)


def _one_row_ms(estimator: Any, row: Any) -> float:
    """Median milliseconds of ``predict_proba`` on one row, in this process (50 calls)."""
    import statistics
    import warnings

    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(55):
            started = time.perf_counter()
            estimator.predict_proba(row)
            times.append(time.perf_counter() - started)
    return statistics.median(times[5:]) * 1000


def _register_forgeml(model: Any, X: Any, home: Path, name: str) -> None:
    import forgeml
    from forgeml.config import Settings
    from forgeml.registry import promote
    from forgeml.store import Workspace

    with Workspace(Settings(home=home)) as ws:
        record = forgeml.register(model, name=name, sample=X, workspace=ws)
        promote(name, record.version, workspace=ws)


def _promote_latest(home: Path, name: str) -> Any:
    """Point ``name@production`` at its latest version; the model it holds."""
    import forgeml
    from forgeml.config import Settings
    from forgeml.registry import promote
    from forgeml.store import Workspace

    with Workspace(Settings(home=home)) as ws:
        loaded = forgeml.load(f"{name}@latest", workspace=ws)
        promote(name, loaded.version, workspace=ws)
        return loaded.model


def _save_mlflow(model: Any, X: Any, categorical: list[str], folder: Path) -> Path:
    import logging

    import mlflow.lightgbm
    import mlflow.pyfunc

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    inner = folder / "mlflow-lightgbm"
    mlflow.lightgbm.save_model(model, str(inner))
    categories = {c: list(X[c].cat.categories) for c in categorical}
    wrapped = folder / "mlflow-model"
    # MLflow advises type hints on predict with a warning that its own filter always shows.
    with contextlib.redirect_stderr(io.StringIO()):
        python_model = _categorical_pyfunc(mlflow)(categories)
        mlflow.pyfunc.save_model(
            str(wrapped), python_model=python_model, artifacts={"lightgbm": str(inner)}
        )
    return wrapped


def _categorical_pyfunc(mlflow: Any) -> type:
    class CategoricalLightGBM(mlflow.pyfunc.PythonModel):
        """The saved lightgbm model, given its text columns as the training categories."""

        def __init__(self, categories: dict[str, list[Any]]) -> None:
            self.categories = categories

        def load_context(self, context: Any) -> None:
            import pandas as pd

            self.model = mlflow.lightgbm.load_model(context.artifacts["lightgbm"])
            # Built once: a dtype made per request from the lists costs more than the cast.
            self.dtypes = {c: pd.CategoricalDtype(v) for c, v in self.categories.items()}

        # No type hints: MLflow would read them as an input schema.
        def predict(self, context, model_input, params=None):
            return self.model.predict(model_input.astype(self.dtypes))

    return CategoricalLightGBM


# -- servers ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_FLOOR_CALLS = {
    "lgbm": "Booster.predict",
    "xgb": "inplace_predict",
    "auto": "the compiled TrainedModel",
}


def _v2_body(row: dict[str, Any]) -> bytes:
    """One v2 inference request holding ``row``: one tensor of shape [1] per column (INT64 for
    whole numbers, FP64 for other numbers, BYTES for text and missing values)."""
    inputs = []
    for column, value in row.items():
        if isinstance(value, bool) or value is None or isinstance(value, str):
            datatype = "BYTES"
        else:
            datatype = "INT64" if isinstance(value, int) else "FP64"
        inputs.append({"name": column, "datatype": datatype, "shape": [1], "data": [value]})
    return json.dumps({"inputs": inputs}).encode()


def _specs(prepared: Prepared, workers: int, model: str) -> dict[str, ServerSpec]:
    """The servers of one model, by kind (``mlflow`` for ``lgbm`` only)."""
    name = NAMES[model]
    row = prepared.rows[model]
    native = json.dumps({"records": [row]}).encode()
    records = json.dumps({"dataframe_records": [row]}).encode()
    path = f"/v1/models/{name}/predict"
    forgeml = [str(BIN / "forgeml"), "--home", str(prepared.workspace), "serve"]
    forgeml += [f"{name}@production", "--workers", str(workers), "--port"]
    specs = {
        "forgeml": ServerSpec(
            f"forgeml:{model}",
            "forgeml",
            forgeml,
            path,
            native,
            "/health/ready",
            f"defaults, {workers} worker(s): validation, metrics, prediction log, access log on",
        ),
        "forgeml-no-access-log": ServerSpec(
            f"forgeml-no-access-log:{model}",
            "forgeml --no-access-log",
            [*forgeml[:-1], "--no-access-log", "--port"],
            path,
            native,
            "/health/ready",
            "as above, access log off",
        ),
        "forgeml-mlflow": ServerSpec(
            f"forgeml-mlflow:{model}",
            "forgeml /invocations",
            forgeml,
            "/invocations",
            records,
            "/health/ready",
            "defaults as above, MLflow's scoring protocol (dataframe_records)",
        ),
        "forgeml-v2": ServerSpec(
            f"forgeml-v2:{model}",
            "forgeml v2 infer",
            forgeml,
            f"/v2/models/{name}/infer",
            _v2_body(row),
            "/health/ready",
            "defaults as above, Open Inference Protocol v2 (one JSON tensor per column)",
        ),
        "floor": ServerSpec(
            f"floor:{model}",
            "floor",
            [
                sys.executable,
                str(prepared.floor_source),
                str(prepared.workspace),
                f"{name}@production",
                model,
            ],
            path,
            native,
            "/health/ready",
            f"Starlette + orjson + {_FLOOR_CALLS[model]}, no validation, no logging",
        ),
    }
    if model == "lgbm" and prepared.mlflow_model is not None:
        mlflow = [str(BIN / "mlflow"), "models", "serve", "-m", str(prepared.mlflow_model)]
        mlflow += ["--env-manager", "local", "-h", "127.0.0.1", "-p"]
        specs["mlflow"] = ServerSpec(
            f"mlflow:{model}",
            "MLflow",
            mlflow,
            "/invocations",
            records,
            "/ping",
            "mlflow models serve without -w (its default workers), Uvicorn's access log on",
        )
    return specs


def _start(spec: ServerSpec, folder: Path) -> Running:
    port = _free_port()
    # The floor takes its port last without a flag; the others end their argv with the flag.
    argv = [*spec.argv, str(port)]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = folder / f"{spec.key}.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        # A session of its own, so that stopping reaches every process the server started.
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = Running(spec, port, process, log, 0.0)
    deadline = time.monotonic() + READY_TIMEOUT
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{spec.label} exited ({process.returncode}):\n{_tail(log)}")
            try:
                if client.get(server.url + spec.ready).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                _stop(server)
                message = f"{spec.label} not ready in {READY_TIMEOUT:.0f} s"
                raise RuntimeError(f"{message}:\n{_tail(log)}")
            time.sleep(0.2)
    server.startup = time.perf_counter() - started
    return server


def _stop(server: Running) -> None:
    """SIGTERM to the server's process group, then wait (forgeml writes its log first)."""
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def _processes(server: Running) -> str:
    """How many processes serve, and the worker count Uvicorn was started with, if given."""
    members = _tree(server.process.pid)
    lines = []
    for member in members:
        with contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" "))
    workers = re.search(rb"uvicorn .*--workers (\d+)", b"\n".join(lines))
    described = f"{len(members)} process(es)"
    return described + (f", uvicorn --workers {workers.group(1).decode()}" if workers else "")


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _answer(server: Running) -> str:
    """The server's answer to the benchmark's request; raises unless it is a 200."""
    spec = server.spec
    response = httpx.post(
        server.url + spec.path,
        content=spec.body,
        headers={"Content-Type": "application/json"},
        timeout=30.0,
        trust_env=False,  # never through a proxy
    )
    if response.status_code != 200:
        raise RuntimeError(f"{spec.label} answered {response.status_code}: {response.text[:500]}")
    return response.text.strip()


def _prometheus(server: Running, name: str) -> float | None:
    try:
        text = httpx.get(server.url + "/metrics", timeout=10.0, trust_env=False).text
    except httpx.HTTPError:
        return None
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


# -- load -------------------------------------------------------------------------------------


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unexpected wrk time {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _parse_wrk(output: str, cpu: Cpu) -> Point:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"no {pattern!r} in wrk's output:\n{output}")
        return match

    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Point(
        rps=float(find(r"^Requests/sec:\s+([0-9.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        non2xx=int(find(r"^non-2xx: (\d+)").group(1)),
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        requests=int(find(r"^\s+(\d+) requests in").group(1)),
        cpu=cpu,
    )


def _wrk(server: Running, script: Path, connections: int, seconds: int) -> Point:
    threads = 1 if connections < 8 else 2
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["--timeout", WRK_TIMEOUT, "-s", str(script), server.url + server.spec.path]
    busy, mine = _busy_ticks(), _tree_ticks(server.process.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    # wrk is the only child reaped in between: the servers are reaped when stopped.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / elapsed
    server_cpu = (_tree_ticks(server.process.pid) - mine) / TICKS / elapsed
    total = (_busy_ticks() - busy) / TICKS / elapsed
    return _parse_wrk(done.stdout, Cpu(server_cpu, wrk, max(0.0, total - server_cpu - wrk)))


def _busy_ticks() -> int:
    """Clock ticks every core of the machine spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values[:8]) - idle  # guest time is already counted in user time


def _tree_ticks(pid: int) -> int:
    """Clock ticks the process and its descendants spent on the CPU (user + system)."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _script(folder: Path, spec: ServerSpec) -> Path:
    path = folder / f"{spec.key}.lua"
    path.write_text(LUA_TEMPLATE.format(body=spec.body.decode()))
    return path


def _measure(
    server: Running, folder: Path, levels: list[int], seconds: int, console: Console
) -> dict[int, Point]:
    script = _script(folder, server.spec)
    points: dict[int, Point] = {}
    logged = server.spec.key.startswith("forgeml")  # every forgeml kind logs predictions
    for c in levels:
        _wrk(server, script, c, WARM_UP)
        before = _prometheus(server, DROPPED) if logged else None
        point = _wrk(server, script, c, seconds)
        after = _prometheus(server, DROPPED) if logged else None
        if before is not None and after is not None:
            point = replace(point, dropped=after - before)
        points[c] = point
        console.print(
            f"  c={c:<3} {point.rps:>9,.0f} req/s  p50 {point.p50_ms:7.2f} ms  "
            f"p99 {point.p99_ms:7.2f} ms  non-2xx {point.non2xx}  socket errors "
            f"{point.socket_errors}  CPU: server {point.cpu.server:.2f}, wrk "
            f"{point.cpu.wrk:.2f}, other {point.cpu.other:.2f}",
            markup=False,
        )
    if logged:
        written = _prometheus(server, "forgeml_prediction_log_written")
        dropped = _prometheus(server, DROPPED)
        console.print(
            f"  prediction log so far: {written or 0:,.0f} records written, "
            f"{dropped or 0:,.0f} dropped",
            markup=False,
        )
    return points


# -- memory -----------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """The process and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _rss_reader() -> Callable[[int], int]:
    try:
        import psutil
    except ImportError:
        psutil = None

    def rss(pid: int) -> int:
        total = 0
        for member in _tree(pid):
            if psutil is not None:
                with contextlib.suppress(psutil.Error):
                    total += psutil.Process(member).memory_info().rss
                continue
            try:
                status = Path(f"/proc/{member}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            total += int(match.group(1)) * 1024 if match else 0
        return total

    return rss


def _soak(prepared: Prepared, workers: int, seconds: int, console: Console) -> None:
    spec = _specs(prepared, workers, "lgbm")["forgeml"]
    server = _start(spec, prepared.folder)
    rss = _rss_reader()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - started, rss(server.process.pid)))
            stop.wait(1.0)

    try:
        _answer(server)
        idle = rss(server.process.pid)
        script = _script(prepared.folder, spec)
        _wrk(server, script, 32, WARM_UP)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        point = _wrk(server, script, 32, seconds)
        stop.set()
        sampler.join()
        dropped = _prometheus(server, DROPPED)
        written = _prometheus(server, "forgeml_prediction_log_written")
    finally:
        _stop(server)
    mb = [value / 2**20 for _, value in samples]
    half = len(mb) // 2
    growth = mb[-1] - mb[half]
    console.print(
        f"soak: forgeml ({spec.note}) at c=32 for {seconds} s: {point.rps:,.0f} req/s, "
        f"p50 {point.p50_ms:.2f} ms, p99 {point.p99_ms:.2f} ms, non-2xx {point.non2xx}, "
        f"socket errors {point.socket_errors}; CPU: server {point.cpu.server:.2f}, wrk "
        f"{point.cpu.wrk:.2f}, other {point.cpu.other:.2f} cores",
        markup=False,
    )
    if written is not None:
        console.print(
            f"prediction log: {written:,.0f} records written, {dropped or 0:,.0f} dropped",
            markup=False,
        )
    console.print(
        f"RSS of the server's processes, sampled every second ({len(mb)} samples): "
        f"idle {idle / 2**20:.1f} MB, start {mb[0]:.1f} MB, end {mb[-1]:.1f} MB, "
        f"max {max(mb):.1f} MB; second half {mb[half]:.1f} -> {mb[-1]:.1f} MB "
        f"({growth:+.1f} MB)",
        markup=False,
    )
    step = max(1, len(mb) // 10)
    trace = ", ".join(f"{t:.0f}s {value / 2**20:.1f}" for t, value in samples[::step])
    console.print(f"RSS trace (MB): {trace}", markup=False)
    flat = growth <= max(5.0, 0.02 * mb[half])
    console.print(
        f"flat under load (second half grows by at most 5 MB or 2%): {'PASS' if flat else 'FAIL'}"
    )


# -- report -----------------------------------------------------------------------------------


def _ratio(a: Point | None, b: Point | None) -> str:
    return "-" if a is None or b is None else f"{a.rps / b.rps:,.2f}x"


def _per_core_ratio(a: Point | None, b: Point | None) -> str:
    if a is None or b is None or a.cpu.server <= 0 or b.cpu.server <= 0:
        return "-"
    return f"{(a.rps / a.cpu.server) / (b.rps / b.cpu.server):,.2f}x"


def _report(
    results: dict[str, dict[str, dict[int, Point]]],
    levels: list[int],
    seconds: int,
    console: Console,
) -> None:
    """``results``: model -> server kind -> connections -> point."""
    labels = {
        "forgeml": "forgeml",
        "forgeml-no-access-log": "forgeml --no-access-log",
        "forgeml-mlflow": "forgeml /invocations",
        "forgeml-v2": "forgeml v2 infer",
        "mlflow": "MLflow",
        "floor": "floor",
    }
    table = Table(
        title=f"One Adult row per request, wrk {seconds} s per point after {WARM_UP} s warm-up"
    )
    columns = ("model", "server", "c", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket err")
    columns += ("log dropped", "server CPU", "wrk CPU", "other CPU")
    for column in columns:
        table.add_column(column, justify="right")
    for model, servers in results.items():
        for kind, points in servers.items():
            for c, p in points.items():
                table.add_row(
                    model,
                    labels[kind],
                    str(c),
                    f"{p.rps:,.0f}",
                    f"{p.p50_ms:.2f}",
                    f"{p.p99_ms:.2f}",
                    str(p.non2xx),
                    str(p.socket_errors),
                    "-" if p.dropped is None else f"{p.dropped:,.0f}",
                    f"{p.cpu.server:.2f}",
                    f"{p.cpu.wrk:.2f}",
                    f"{p.cpu.other:.2f}",
                )
            table.add_section()
    console.print(table)
    console.print(
        "CPU columns: cores busy on average during the point; other = the rest of the machine."
    )

    ratios = Table(
        title="forgeml (defaults) on each protocol against each model's floor (and MLflow), "
        "same run"
    )
    for column in ("model", "forgeml route", "c", "forgeml req/s", "floor req/s"):
        ratios.add_column(column, justify="right")
    ratios.add_column("forgeml / floor", justify="right")
    ratios.add_column("per server core", justify="right")
    ratios.add_column("MLflow req/s", justify="right")
    ratios.add_column("forgeml / MLflow", justify="right")
    for model, servers in results.items():
        floor, mlflow = servers.get("floor", {}), servers.get("mlflow", {})
        for kind, route in FORGEML_ROUTES.items():
            mine = servers.get(kind)
            if mine is None:
                continue
            for c in levels:
                m, f, a = mine.get(c), floor.get(c), mlflow.get(c)
                ratios.add_row(
                    model,
                    route,
                    str(c),
                    *("-" if p is None else f"{p.rps:,.0f}" for p in (m, f)),
                    _ratio(m, f),
                    _per_core_ratio(m, f),
                    "-" if a is None else f"{a.rps:,.0f}",
                    _ratio(m, a),
                )
        ratios.add_section()
    console.print(ratios)
    console.print(
        "per server core: the ratio of req/s per core the server kept busy; on a contended "
        "machine a process with more threads gets a larger share of the CPU, so this is the "
        "fairer comparison there"
    )

    for model, servers in results.items():
        mine, quiet = servers.get("forgeml", {}), servers.get("forgeml-no-access-log", {})
        shares = [
            f"c={c} {mine[c].rps / quiet[c].rps:.0%}" for c in levels if c in mine and c in quiet
        ]
        if shares:
            console.print(
                f"{model}: forgeml with its access log answers, of the req/s without it: "
                + ", ".join(shares)
            )
    busiest = max(
        (p.cpu.other for s in results.values() for ps in s.values() for p in ps.values()),
        default=0,
    )
    if busiest > NOISE:
        console.print(
            f"note: other processes kept up to {busiest:.2f} cores busy during some points "
            f"(column 'other CPU'); those points are noisy",
            markup=False,
        )

    console.print("targets, forgeml with its defaults, one worker:")
    for model, servers in results.items():
        mine, floor, mlflow = (servers.get(k, {}) for k in ("forgeml", "floor", "mlflow"))
        top, one = mine.get(32), mine.get(1)
        checks = [
            (
                "c=32: forgeml req/s >= 0.5x the floor's",
                None if top is None or 32 not in floor else top.rps / floor[32].rps,
                "x",
                lambda v: v >= 0.5,
            ),
            (
                "c=1: forgeml p50 < 1 ms",
                None if one is None else one.p50_ms,
                " ms",
                lambda v: v < 1,
            ),
        ]
        for kind, route in FORGEML_ROUTES.items():
            other = servers.get(kind)
            if kind == "forgeml" or other is None:
                continue
            high, low = other.get(32), other.get(1)
            checks += [
                (
                    f"c=32: forgeml {route} req/s >= 0.5x the floor's",
                    None if high is None or 32 not in floor else high.rps / floor[32].rps,
                    "x",
                    lambda v: v >= 0.5,
                ),
                (
                    f"c=1: forgeml {route} p50 < 1 ms",
                    None if low is None else low.p50_ms,
                    " ms",
                    lambda v: v < 1,
                ),
            ]
        if model == "lgbm":
            checks += [
                (
                    "c=32: forgeml req/s >= 30x MLflow's",
                    None if top is None or 32 not in mlflow else top.rps / mlflow[32].rps,
                    "x",
                    lambda v: v >= 30,
                ),
                (
                    "c=32: forgeml p99 < 20 ms",
                    None if top is None else top.p99_ms,
                    " ms",
                    lambda v: v < 20,
                ),
            ]
        for label, value, unit, met in checks:
            verdict = (
                "not measured"
                if value is None
                else f"{value:,.2f}{unit}  " + ("PASS" if met(value) else "FAIL")
            )
            console.print(f"  {model}: {label}: {verdict}", markup=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per point")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated connections")
    parser.add_argument(
        "--only", default=",".join(SERVERS), help=f"comma-separated, of {','.join(SERVERS)}"
    )
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated, of {','.join(MODELS)}"
    )
    parser.add_argument(
        "--budget", type=int, default=20, help="seconds of forgeml train for the auto model"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="the auto model: exactly this many trials, no latency bound (give a --budget "
        "they fit in): the same model however busy the machine is",
    )
    parser.add_argument(
        "--families", default=None, help="the auto model: families to search, e.g. lgbm,xgb"
    )
    parser.add_argument("--workers", type=int, default=1, help="forgeml worker processes")
    parser.add_argument(
        "--soak", type=int, default=0, help="instead: forgeml (lgbm) at c=32 for SOAK s, RSS"
    )
    args = parser.parse_args()
    console = Console(width=150)
    if not DATASETS.is_dir():
        console.print(f"The shared datasets folder {DATASETS} is absent")
        return
    if shutil.which("wrk") is None:
        console.print("wrk is not installed")
        return
    levels = [int(c) for c in args.concurrency.split(",")]
    chosen = [s.strip() for s in args.only.split(",")]
    unknown = sorted(set(chosen) - set(SERVERS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    models = ["lgbm"] if args.soak else [m.strip() for m in args.models.split(",")]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    want_mlflow = "mlflow" in chosen and "lgbm" in models and not args.soak
    versions = ""
    if want_mlflow:
        import mlflow

        versions = f" MLflow {mlflow.__version__}."
    cores = os.cpu_count()
    console.print(
        f"{cores} cores; wrk runs on the same machine and competes with the server for them "
        f"(-t1 below 8 connections, -t2 from 8). Load average {os.getloadavg()[0]:.2f}.{versions}",
        markup=False,
    )
    with tempfile.TemporaryDirectory(prefix="forgeml-serving-") as tmp:
        prepared = _prepare(
            Path(tmp), console, models, args.budget, want_mlflow, args.trials, args.families
        )
        if args.soak:
            _soak(prepared, args.workers, args.soak, console)
            return
        results: dict[str, dict[str, dict[int, Point]]] = {}
        for model in models:
            specs = _specs(prepared, args.workers, model)
            for kind in (k for k in SERVERS if k in chosen and k in specs):
                spec = specs[kind]
                server = _start(spec, prepared.folder)
                try:
                    answer = _answer(server)
                    console.print(
                        f"{model} / {spec.label} ({spec.note}): ready in {server.startup:.1f} s, "
                        f"{_processes(server)}; answers {answer[:160]}",
                        markup=False,
                    )
                    points = _measure(server, prepared.folder, levels, args.seconds, console)
                    results.setdefault(model, {})[kind] = points
                finally:
                    _stop(server)
    _report(results, levels, args.seconds, console)


if __name__ == "__main__":
    main()
