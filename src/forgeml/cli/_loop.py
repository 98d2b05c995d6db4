"""``forgeml loop run | watch | history``: the continuous-training loop of a registered model."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forgeml.cli._common import (
    console,
    fmt_ms,
    open_workspace,
    principal_of,
    print_json,
    require_positive,
    styled,
    table,
)
from forgeml.errors import InputError

if TYPE_CHECKING:
    from forgeml.loop import LoopRunner, PassReport

app = typer.Typer(no_args_is_help=True, help="Continuous training: run, watch, history.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="The policy YAML (default: HOME/loops/NAME.yaml)."),
]


def _runner(ctx: typer.Context, name: str, policy_path: Path | None, **options: Any) -> LoopRunner:
    from forgeml.loop import LoopRunner, load_policy, loop_principal
    from forgeml.workflows import Context

    ws = open_workspace(ctx)
    ws.models.get_model(name)  # NotFoundError names the model
    path = policy_path or ws.home / "loops" / f"{name}.yaml"
    if policy_path is None and not path.is_file():
        raise InputError(f"No loop policy for {name}: write {path} or pass --policy FILE")
    policy = load_policy(path)
    if policy.model != name:
        raise InputError(f"{path} is the policy of model {policy.model!r}, not {name!r}")
    acting = loop_principal(principal_of(ctx))
    return LoopRunner(Context(ws, acting, origin="cli"), policy, **options)


def _print_pass(report: PassReport) -> None:
    state = "acted" if report.acted else "did not act"
    console.print(
        f"{report.model}: {state}; phase {report.phase}, cycle {report.cycle}", markup=False
    )
    for line in report.actions:
        console.print(f"  {line}", markup=False)
    for d in report.decisions:
        mark = "pass" if d.passed else "fail"
        console.print(f"  [{mark}] {d.kind}: {d.name}: {d.summary}", markup=False)


@app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model.")],
    policy: PolicyOption = None,
    json: JsonOption = False,
) -> None:
    """One pass: check the triggers and act (retrain, compare, gate, roll out, promote,
    roll back), every step recorded."""
    report = _runner(ctx, name, policy).run_pass()
    if json:
        print_json(report.to_dict())
    else:
        _print_pass(report)


@app.command("watch")
def watch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model.")],
    policy: PolicyOption = None,
    max_passes: Annotated[
        int | None, typer.Option("--max-passes", help="Stop after this many passes.")
    ] = None,
) -> None:
    """Run passes now and on the policy's cron schedule until stopped (Ctrl-C or SIGTERM);
    a watcher started again resumes where the store says it stopped."""
    from forgeml.loop import watch as watch_loop

    if max_passes is not None:
        require_positive("max-passes", max_passes)
    runner = _runner(ctx, name, policy, on_event=_say)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"watching {name} on '{runner.policy.schedule}' as {runner.holder}", markup=False)
    passes = watch_loop(runner, stop=stop, max_passes=max_passes, on_pass=_print_pass)
    console.print(f"stopped after {passes} passes", markup=False)


def _say(line: str) -> None:
    console.print(f"  ... {line}", markup=False)


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model.")],
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="Only the most recent decisions.")
    ] = None,
    steps: Annotated[bool, typer.Option("--steps", help="Also list the recorded steps.")] = False,
    json: JsonOption = False,
) -> None:
    """Every decision the loop made on NAME (passed or failed, with its reasons) and its steps."""
    ws = open_workspace(ctx)
    ws.models.get_model(name)  # NotFoundError names the model
    if limit is not None:
        require_positive("limit", limit)
    decisions = ws.loop.decisions(name, limit=limit)
    recorded = ws.loop.steps(name)
    if json:
        print_json(
            {
                "model": name,
                "decisions": [d.to_dict() for d in decisions],
                "steps": [s.to_dict() for s in recorded],
            }
        )
        return
    if not decisions and not recorded:
        console.print(f"No loop history for {name}.", markup=False)
        return
    t = table("#", "when", "cycle", "decision", "", "why", title=f"loop decisions of {name}")
    for d in decisions:
        mark = styled("pass", "green") if d.passed else styled("fail", "red")
        t.add_row(
            str(d.decision_id),
            fmt_ms(d.created_at),
            "-" if d.cycle is None else str(d.cycle),
            f"{d.kind}: {d.name}",
            mark,
            d.summary,
        )
    console.print(t)
    if steps:
        s = table("step", "state", "attempts", "started", "finished", "holder", title="steps")
        for step in recorded:
            s.add_row(
                step.key,
                step.state + (f": {step.error}" if step.error else ""),
                str(step.attempts),
                fmt_ms(step.started_at),
                fmt_ms(step.finished_at),
                step.holder,
            )
        console.print(s)
