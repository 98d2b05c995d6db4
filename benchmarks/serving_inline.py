"""One request at a time: a lone small request answered on the event loop (``inline_ms``, the
default 1) against always handing it to the worker thread (``inline_ms=0``), A/B in one run.

A ``LGBMClassifier`` (100 trees) fitted on 5,000 UCI Adult rows is registered; two servers
(``forgeml.testing.ServerThread``, every default on: validation, metrics, prediction log,
access log) serve it, one per setting, each in its own process; wrk asks one row at a time
(``-c1``) for ``--seconds`` per round, the two servers interleaved for ``--rounds`` rounds so
that both see the same machine load. Prints p50 and requests/s per round.

    python benchmarks/serving_inline.py [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _serve(inline_ms: float, home: str) -> None:
    """Run one server with ``inline_ms`` and print its port."""
    import forgeml.serve._batcher as batcher
    from forgeml.config import Settings
    from forgeml.store import Workspace
    from forgeml.testing import ServerThread

    original = batcher.Batcher.__init__

    def with_inline(self: batcher.Batcher, *args: object, **kwargs: object) -> None:
        kwargs["inline_ms"] = inline_ms
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    batcher.Batcher.__init__ = with_inline  # type: ignore[method-assign]
    with ServerThread(Workspace(Settings(home=Path(home))), models=("m@1",), access_log=True) as s:
        print(s.port, flush=True)
        while True:
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--serve", nargs=2, metavar=("INLINE_MS", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(float(args.serve[0]), args.serve[1])
        return
    warnings.simplefilter("ignore")
    import lightgbm as lgb
    import pandas as pd

    import forgeml as fm
    from forgeml.config import Settings
    from forgeml.store import Workspace

    frame = pd.read_csv(DATASETS / "adult.csv", nrows=5000).drop(columns=["split"])
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and column != "income":
            frame[column] = frame[column].astype("category")
    X, y = frame.drop(columns=["income"]), frame["income"]
    home = tempfile.mkdtemp(prefix="forgeml-inline-")
    with Workspace(Settings(home=Path(home))) as ws:
        model = lgb.LGBMClassifier(n_estimators=100, random_state=0, verbose=-1).fit(X, y)
        fm.register(model, name="m", sample=X, workspace=ws)
    one = X.iloc[[7]].astype(object)
    row = one.where(one.notna(), None).to_dict(orient="records")[0]
    script = Path(tempfile.mkdtemp()) / "request.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{json.dumps({'records': [row]})}]==]\n"
    )
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        for inline in ("0", "1"):
            process = subprocess.Popen(
                [sys.executable, __file__, "--serve", inline, home],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert process.stdout is not None
            servers[inline] = (process, int(process.stdout.readline()))
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in servers}
        for _ in range(args.rounds):
            for inline, (_, port) in servers.items():
                url = f"http://127.0.0.1:{port}/v1/models/m/predict"
                wrk = ["wrk", "-t1", "-c1", f"-d{args.seconds}s", "--latency", "-s", str(script)]
                out = subprocess.run(
                    [*wrk, url],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                found = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
                rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
                assert found is not None and rate is not None, out
                scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
                results[inline].append((float(found.group(1)) * scale, float(rate.group(1))))
    finally:
        for process, _ in servers.values():
            process.kill()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"one Adult row per request, wrk -c1, {args.seconds} s per round; load average {load}")
    for inline, values in results.items():
        p50 = ", ".join(f"{v:.3f}" for v, _ in values)
        rates = ", ".join(f"{r:,.0f}" for _, r in values)
        print(f"inline_ms={inline:>4}: p50 ms per round [{p50}]; req/s [{rates}]")


if __name__ == "__main__":
    main()
