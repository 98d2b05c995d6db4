"""``forgeml serve`` and ``forgeml routes show | set | clear``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from forgeml.cli._common import (
    console,
    get_settings,
    open_context,
    open_workspace,
    print_json,
    table,
)
from forgeml.errors import InputError, NotFoundError
from forgeml.serve._options import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_GRACEFUL_SHUTDOWN,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_LATENCY_BUDGET_MS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_QUEUE,
)

routes_app = typer.Typer(
    no_args_is_help=True,
    help="Traffic routes of served models: canary and A/B splits, shadows (applied live).",
)


def serve(
    ctx: typer.Context,
    models: Annotated[list[str], typer.Argument(help="NAME@ALIAS or NAME@VERSION, one or more.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    max_batch_rows: Annotated[int, typer.Option(help="Most rows per batch.")] = 512,
    max_wait_ms: Annotated[
        float, typer.Option(help="Wait this long to fill a batch (0: adaptive, never waits).")
    ] = 0.0,
    max_queue: Annotated[
        int, typer.Option(help="Requests waiting per model version; beyond, 503 + Retry-After.")
    ] = DEFAULT_MAX_QUEUE,
    latency_budget_ms: Annotated[
        float, typer.Option(help="Longest predicted wait (ms); beyond, 503 + Retry-After.")
    ] = DEFAULT_LATENCY_BUDGET_MS,
    max_rows: Annotated[int, typer.Option(help="Most rows per request.")] = 10_000,
    cache_size: Annotated[int, typer.Option(help="Rows cached per version (0: off).")] = 0,
    log_predictions: Annotated[
        bool, typer.Option(help="Log every prediction to the store.")
    ] = True,
    when_full: Annotated[
        str, typer.Option(help="When the prediction log is full: drop (counted) or block.")
    ] = "drop",
    access_log: Annotated[bool, typer.Option(help="One JSON line per request.")] = True,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between checks of aliases and routes.")
    ] = 1.0,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token the admin endpoints require while the workspace has no API keys "
            "(prefer FORGEML_ADMIN_TOKEN or --admin-token-file: arguments are visible to other "
            "local users)."
        ),
    ] = None,
    admin_token_file: Annotated[
        Path | None, typer.Option(help="A file whose first line is the admin token.")
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host name to answer besides loopback and --host (repeat; * for any).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS: the certificate file (PEM, with its chain).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="Serve HTTPS: the certificate's private key file (PEM).")
    ] = None,
    rate_limit: Annotated[
        float, typer.Option(help="Requests per second per API key or client (0: no limit).")
    ] = 0.0,
    rate_burst: Annotated[
        int, typer.Option(help="Requests at once beyond the rate (0: one second's worth).")
    ] = 0,
    unknown_categories: Annotated[
        str, typer.Option(help="error (422) or pass (given to the model).")
    ] = "error",
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Load models stored with joblib (pickle runs code when loaded).",
        ),
    ] = False,
    header_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send its headers; beyond, 408.")
    ] = DEFAULT_HEADER_TIMEOUT,
    body_timeout: Annotated[
        float, typer.Option(help="Seconds a client has to send its body; beyond, 408.")
    ] = DEFAULT_BODY_TIMEOUT,
    max_connections: Annotated[
        int, typer.Option(help="Open connections per process; beyond, 503 at once.")
    ] = DEFAULT_MAX_CONNECTIONS,
    graceful_shutdown: Annotated[
        float, typer.Option(help="Seconds in-flight requests get after SIGTERM.")
    ] = DEFAULT_GRACEFUL_SHUTDOWN,
) -> None:
    """Serve registered models over HTTP (native JSON, MLflow, Open Inference v2)."""
    from pydantic import ValidationError

    from forgeml.http._server import run
    from forgeml.registry import parse_model_ref
    from forgeml.serve._options import ServeOptions

    if admin_token is None and admin_token_file is not None:
        try:
            lines = admin_token_file.read_text(encoding="utf-8").strip().splitlines()
        except OSError as e:
            raise InputError(f"--admin-token-file {admin_token_file}: {e.strerror}") from None
        admin_token = lines[0].strip() if lines else None
        if not admin_token:
            raise InputError(f"--admin-token-file {admin_token_file} is empty")
    try:
        options = ServeOptions(
            models=tuple(models),
            host=host,
            port=port,
            workers=workers,
            max_batch_rows=max_batch_rows,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            latency_budget_ms=latency_budget_ms,
            max_rows=max_rows,
            cache_size=cache_size,
            log_predictions=log_predictions,
            # pydantic checks the choice; its error is turned into one line below
            when_full=when_full,  # type: ignore[arg-type]
            access_log=access_log,
            poll_interval=poll_interval,
            admin_token=admin_token,
            allowed_hosts=tuple(allowed_host or ()),
            rate_limit=rate_limit,
            tls_certfile=None if tls_cert is None else str(tls_cert),
            tls_keyfile=None if tls_key is None else str(tls_key),
            rate_burst=rate_burst,
            unknown_categories=unknown_categories,  # type: ignore[arg-type]
            trust_pickle=trust_pickle,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
            graceful_shutdown=graceful_shutdown,
        )
    except ValidationError as e:
        problem = e.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "options"
        raise InputError(f"--{where.replace('_', '-')}: {problem['msg']}") from None
    ws = open_workspace(ctx)
    for ref in options.models:  # fail fast on a reference that does not resolve
        name, which = parse_model_ref(ref)
        try:
            record = ws.models.resolve(name, which)
        except NotFoundError as e:
            raise InputError(f"Cannot serve {ref}: {e.message}") from None
        console.print(f"serving {ref} (version {record.version})")
    ws.close()
    scheme = "https" if options.tls_certfile else "http"
    console.print(f"listening on {scheme}://{options.host}:{options.port} (docs at /docs)")
    run(options, settings=get_settings(ctx))


def _parse_split(text: str) -> dict[str, float]:
    split: dict[str, float] = {}
    for part in text.split(","):
        key, sep, weight = part.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--split is VERSION_OR_ALIAS=WEIGHT,...; got {part!r}")
        try:
            split[key.strip()] = float(weight)
        except ValueError:
            raise InputError(
                f"--split weight of {key.strip()!r} is a number; got {weight!r}"
            ) from None
    return split


@routes_app.command("set")
def set_route(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The served model's name.")],
    split: Annotated[
        str, typer.Option(help="VERSION_OR_ALIAS=WEIGHT,... e.g. production=90,7=10.")
    ],
    shadow: Annotated[
        str | None, typer.Option(help="VERSION_OR_ALIAS[:FRACTION], e.g. staging:0.2.")
    ] = None,
    sticky: Annotated[bool, typer.Option(help="Same key, same version.")] = True,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Set a model's route; running servers apply it within their poll interval."""
    from forgeml import workflows

    config: dict[str, Any] = {"split": _parse_split(split), "sticky": sticky}
    if shadow:
        version, _, fraction = shadow.partition(":")
        try:
            config["shadow"] = {"version": version, "fraction": float(fraction or 1.0)}
        except ValueError:
            raise InputError(f"--shadow fraction is a number; got {fraction!r}") from None
    change = workflows.set_route(open_context(ctx), name, config)
    if json:
        print_json(change.to_dict())
        return
    shares = ", ".join(f"v{v} {w:.0%}" for v, w in change.resolved["split"].items())
    shadow = change.resolved.get("shadow")
    console.print(
        f"{name}: {shares}"
        + (f"; shadow v{shadow['version']} {shadow['fraction']:.0%}" if shadow else "")
    )


@routes_app.command("show")
def show_routes(
    ctx: typer.Context, json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show stored routes."""
    routes = open_workspace(ctx).routing.routes()
    if json:
        print_json({k: {"config": c, "revision": r} for k, (c, r) in routes.items()})
        return
    if not routes:
        console.print("No routes: every served model sends all traffic to its reference.")
        return
    t = table("model", "split", "shadow", "sticky", "revision")
    for model, (config, revision) in sorted(routes.items()):
        shadow = config.get("shadow")
        t.add_row(
            model,
            ", ".join(f"{k}={v:g}" for k, v in config["split"].items()),
            "-" if not shadow else f"{shadow['version']}:{shadow.get('fraction', 1.0):g}",
            str(config.get("sticky", True)).lower(),
            str(revision),
        )
    console.print(t)


@routes_app.command("clear")
def clear_route(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The served model's name.")]
) -> None:
    """Drop a model's route: all traffic goes to the served reference again."""
    from forgeml import workflows

    workflows.clear_route(open_context(ctx), name)
    console.print(f"{name}: route cleared")
