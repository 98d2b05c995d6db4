"""Model serving: forgeml against MLflow's scoring server and a bare floor, one model, with wrk.

One LightGBM classifier (100 trees, 31 leaves, seed 0) is fitted on UCI Adult and served three
ways, each in its own process on 127.0.0.1, one server at a time:

- forgeml: ``forgeml serve adult@production`` with its defaults (input validation, Prometheus
  metrics, prediction logging to the store and the JSON access log all on); measured once more
  with ``--no-access-log``.
- MLflow: ``mlflow models serve --env-manager local`` with its default worker count. MLflow's
  lightgbm flavor rejects the text columns a JSON request carries for a model fitted on
  categories, so the saved lightgbm model is wrapped in a pyfunc that casts them to the
  training categories first (what an MLflow user has to do to serve this model).
- floor: a few lines of Starlette under Uvicorn that parse the body with orjson, encode the
  record into the float row LightGBM expects and call the booster: no validation, no logging.

wrk loads each server from outside its process with one real Adult row per request (a Lua
script counts non-2xx answers), for a bounded time per concurrency after an uncounted warm-up.
wrk runs on the same machine, so it competes with the server for the CPU.

    python benchmarks/serving.py [--seconds 10] [--concurrency 1,8,32] [--workers 1]
    python benchmarks/serving.py --only forgeml,floor --concurrency 32
    python benchmarks/serving.py --soak 60        # forgeml at c=32 for 60 s, RSS every second
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
SERVERS = ("forgeml", "forgeml-no-access-log", "mlflow", "floor")
WARM_UP = 2  # seconds of load before each measured point, not counted
WRK_TIMEOUT = "10s"  # a slow answer counts as slow, not as a socket error
READY_TIMEOUT = 180.0
TICKS = os.sysconf("SC_CLK_TCK")
DROPPED = "forgeml_prediction_log_dropped"
NOISE = 0.2  # cores busy outside the server and wrk above which a point is called noisy

FLOOR_SOURCE = '''\
"""A bare LightGBM server: parse, encode, predict. No validation, no logging."""

import json
import sys

import lightgbm
import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

booster = lightgbm.Booster(model_file=sys.argv[1])
categorical = json.loads(open(sys.argv[2]).read())
codes = {
    name: {value: float(i) for i, value in enumerate(categories)}
    for name, categories in zip(categorical, booster.pandas_categorical)
}
features = [(name, codes.get(name)) for name in booster.feature_name()]
NAN = float("nan")


async def predict(request):
    record = orjson.loads(await request.body())["records"][0]
    row = np.empty((1, len(features)))
    for j, (name, code) in enumerate(features):
        value = record.get(name)
        if value is None:
            row[0, j] = NAN
        elif code is not None:
            row[0, j] = code.get(value, NAN)
        else:
            row[0, j] = value
    proba = booster.predict(row, num_threads=1)
    return Response(orjson.dumps({"predictions": proba.tolist()}), media_type="application/json")


async def ready(request):
    return Response(b"ready")


app = Starlette(
    routes=[
        Route("/v1/models/{name}/predict", predict, methods=["POST"]),
        Route("/health/ready", ready),
    ]
)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
'''

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
    """The fitted model in every form the servers need, and one request row."""

    folder: Path
    workspace: Path
    mlflow_model: Path
    booster_file: Path
    categorical_file: Path
    floor_source: Path
    row: dict[str, Any]


@dataclass(frozen=True)
class ServerSpec:
    key: str
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


# -- the model --------------------------------------------------------------------------------


def _prepare(folder: Path, console: Console) -> Prepared:
    import lightgbm
    import pandas as pd

    frame = pd.read_csv(DATASETS / "adult.csv").drop(columns=["split"])
    y = frame.pop("income")
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    X = frame.astype({c: "category" for c in categorical})
    started = time.perf_counter()
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=31, random_state=0, verbose=-1)
    model.fit(X, y)
    console.print(
        f"fitted LGBMClassifier(n_estimators=100, num_leaves=31) on Adult, {len(X):,} rows x "
        f"{X.shape[1]} columns ({len(categorical)} categorical) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    # The first row of the file, as JSON gives it: Python numbers and strings, null if missing.
    row = json.loads(frame.head(1).to_json(orient="records"))[0]

    workspace = folder / "ws"
    _register_forgeml(model, X, workspace)
    mlflow_model = _save_mlflow(model, X, categorical, folder)
    booster_file = folder / "booster.txt"
    model.booster_.save_model(str(booster_file))
    categorical_file = folder / "categorical.json"
    categorical_file.write_text(json.dumps(categorical))
    floor_source = folder / "floor_server.py"
    floor_source.write_text(FLOOR_SOURCE)
    return Prepared(
        folder, workspace, mlflow_model, booster_file, categorical_file, floor_source, row
    )


def _register_forgeml(model: Any, X: Any, home: Path) -> None:
    import forgeml
    from forgeml.config import Settings
    from forgeml.registry import promote
    from forgeml.store import Workspace

    with Workspace(Settings(home=home)) as ws:
        record = forgeml.register(model, name="adult", sample=X, workspace=ws)
        promote("adult", record.version, workspace=ws)


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


def _specs(prepared: Prepared, workers: int) -> dict[str, ServerSpec]:
    native = json.dumps({"records": [prepared.row]}).encode()
    mlflow_body = json.dumps({"dataframe_records": [prepared.row]}).encode()
    forgeml = [str(BIN / "forgeml"), "--home", str(prepared.workspace), "serve"]
    forgeml += ["adult@production", "--workers", str(workers), "--port"]
    mlflow = [str(BIN / "mlflow"), "models", "serve", "-m", str(prepared.mlflow_model)]
    mlflow += ["--env-manager", "local", "-h", "127.0.0.1", "-p"]
    return {
        "forgeml": ServerSpec(
            "forgeml",
            "forgeml",
            forgeml,
            "/v1/models/adult/predict",
            native,
            "/health/ready",
            f"defaults, {workers} worker(s): validation, metrics, prediction log, access log on",
        ),
        "forgeml-no-access-log": ServerSpec(
            "forgeml-no-access-log",
            "forgeml --no-access-log",
            [*forgeml[:-1], "--no-access-log", "--port"],
            "/v1/models/adult/predict",
            native,
            "/health/ready",
            "as above, access log off",
        ),
        "mlflow": ServerSpec(
            "mlflow",
            "MLflow",
            mlflow,
            "/invocations",
            mlflow_body,
            "/ping",
            "mlflow models serve without -w (its default workers), Uvicorn's access log on",
        ),
        "floor": ServerSpec(
            "floor",
            "floor",
            [
                sys.executable,
                str(prepared.floor_source),
                str(prepared.booster_file),
                str(prepared.categorical_file),
            ],
            "/v1/models/adult/predict",
            native,
            "/health/ready",
            "Starlette + orjson + booster.predict, no validation, no logging",
        ),
    }


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
    logged = server.spec.key.startswith("forgeml")
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
    spec = _specs(prepared, workers)["forgeml"]
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


def _report(
    results: dict[str, dict[int, Point]],
    specs: dict[str, ServerSpec],
    levels: list[int],
    seconds: int,
    console: Console,
) -> None:
    table = Table(
        title=f"One Adult row per request, wrk {seconds} s per point after {WARM_UP} s warm-up"
    )
    columns = ("server", "c", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket err")
    columns += ("log dropped", "server CPU", "wrk CPU", "other CPU")
    for column in columns:
        table.add_column(column, justify="right")
    for key, points in results.items():
        for c, p in points.items():
            table.add_row(
                specs[key].label,
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

    mine, mlflow, floor = (results.get(k, {}) for k in ("forgeml", "mlflow", "floor"))
    ratios = Table(title="forgeml (defaults) against the anchors, same run")
    for column in ("c", "forgeml req/s", "MLflow req/s", "floor req/s"):
        ratios.add_column(column, justify="right")
    ratios.add_column("forgeml / MLflow", justify="right")
    ratios.add_column("forgeml / floor", justify="right")
    for c in levels:
        m, a, f = mine.get(c), mlflow.get(c), floor.get(c)
        ratios.add_row(
            str(c),
            *("-" if p is None else f"{p.rps:,.0f}" for p in (m, a, f)),
            _ratio(m, a),
            _ratio(m, f),
        )
    console.print(ratios)

    quiet = results.get("forgeml-no-access-log", {})
    shares = [f"c={c} {mine[c].rps / quiet[c].rps:.0%}" for c in levels if c in mine and c in quiet]
    if shares:
        console.print(
            "forgeml with its access log answers, of the req/s without it: " + ", ".join(shares)
        )
    busiest = max((p.cpu.other for points in results.values() for p in points.values()), default=0)
    if busiest > NOISE:
        console.print(
            f"note: other processes kept up to {busiest:.2f} cores busy during some points "
            f"(column 'other CPU'); those points are noisy",
            markup=False,
        )

    top, one = mine.get(32), mine.get(1)
    checks = [
        (
            "c=32: forgeml req/s >= 30x MLflow's",
            None if top is None or 32 not in mlflow else top.rps / mlflow[32].rps,
            "x",
            lambda v: v >= 30,
        ),
        (
            "c=32: forgeml req/s >= 0.5x the floor's",
            None if top is None or 32 not in floor else top.rps / floor[32].rps,
            "x",
            lambda v: v >= 0.5,
        ),
        ("c=32: forgeml p99 < 20 ms", None if top is None else top.p99_ms, " ms", lambda v: v < 20),
        ("c=1: forgeml p50 < 1 ms", None if one is None else one.p50_ms, " ms", lambda v: v < 1),
    ]
    console.print("targets, forgeml with its defaults:")
    for label, value, unit, met in checks:
        verdict = (
            "not measured"
            if value is None
            else f"{value:,.2f}{unit}  " + ("PASS" if met(value) else "FAIL")
        )
        console.print(f"  {label}: {verdict}", markup=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per point")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated connections")
    parser.add_argument(
        "--only", default=",".join(SERVERS), help=f"comma-separated, of {','.join(SERVERS)}"
    )
    parser.add_argument("--workers", type=int, default=1, help="forgeml worker processes")
    parser.add_argument(
        "--soak", type=int, default=0, help="instead: forgeml at c=32 for SOAK s, RSS sampled"
    )
    args = parser.parse_args()
    console = Console(width=140)
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
    import mlflow

    cores = os.cpu_count()
    console.print(
        f"{cores} cores; wrk runs on the same machine and competes with the server for them "
        f"(-t1 below 8 connections, -t2 from 8). Load average {os.getloadavg()[0]:.2f}. "
        f"MLflow {mlflow.__version__}.",
        markup=False,
    )
    with tempfile.TemporaryDirectory(prefix="forgeml-serving-") as tmp:
        prepared = _prepare(Path(tmp), console)
        if args.soak:
            _soak(prepared, args.workers, args.soak, console)
            return
        specs = _specs(prepared, args.workers)
        results: dict[str, dict[int, Point]] = {}
        for key in (k for k in SERVERS if k in chosen):
            spec = specs[key]
            server = _start(spec, prepared.folder)
            try:
                answer = _answer(server)
                console.print(
                    f"{spec.label} ({spec.note}): ready in {server.startup:.1f} s, "
                    f"{_processes(server)}; answers {answer[:160]}",
                    markup=False,
                )
                results[key] = _measure(server, prepared.folder, levels, args.seconds, console)
            finally:
                _stop(server)
    _report(results, specs, levels, args.seconds, console)


if __name__ == "__main__":
    main()
