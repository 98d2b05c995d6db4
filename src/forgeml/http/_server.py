"""Running the HTTP interface: Uvicorn with one or several worker processes."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from forgeml.config import Settings
from forgeml.errors import InputError
from forgeml.http._limits import ConnectionLimits, limited_protocol
from forgeml.serve import ServeOptions

__all__ = ["app_from_settings", "run"]


def _tune_interpreter() -> None:
    # The event loop and the prediction threads share the GIL: a thread waiting for it gets
    # it after at most this interval (5 ms by default), which would show in every batch.
    sys.setswitchinterval(0.0005)


def _logging(access_log: bool) -> None:
    import atexit
    import queue
    from logging.handlers import QueueHandler, QueueListener

    # Access lines are written by a listener thread: the event loop only enqueues them.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, handler)
    listener.start()
    atexit.register(listener.stop)
    access = logging.getLogger("forgeml.serve.access")
    access.handlers[:] = [QueueHandler(lines)]
    access.propagate = False
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    main = logging.getLogger("forgeml.serve")
    if not main.handlers:
        text = logging.StreamHandler(sys.stderr)
        text.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        main.addHandler(text)
        main.setLevel(logging.INFO)


def _raise_descriptor_limit(connections: int) -> None:
    """Let the process hold ``connections`` sockets and its own files: raise the soft limit
    of open descriptors towards the hard one (a connection past the cap must be accepted to
    be answered 503, not left in the backlog)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _tls(options: ServeOptions) -> dict[str, Any]:
    """Uvicorn's TLS arguments (none for plain HTTP), the files checked first.

    Raises:
        InputError: a certificate or key file that cannot be read or does not match.
    """
    if options.tls_certfile is None or options.tls_keyfile is None:
        return {}
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(options.tls_certfile, options.tls_keyfile)
    except FileNotFoundError as e:
        raise InputError(f"--tls-cert/--tls-key: no file {e.filename}") from None
    except (ssl.SSLError, OSError) as e:
        raise InputError(
            f"--tls-cert {options.tls_certfile} and --tls-key {options.tls_keyfile} are not a "
            f"PEM certificate and its key: {e}"
        ) from None
    return {"ssl_certfile": options.tls_certfile, "ssl_keyfile": options.tls_keyfile}


def app_from_settings() -> Any:
    """The application of a worker process: options from ``FORGEML_SERVE_OPTIONS``."""
    from forgeml.http._app import create_app

    settings = Settings()
    if not settings.serve_options:
        raise InputError("FORGEML_SERVE_OPTIONS is not set")
    options = ServeOptions.model_validate_json(settings.serve_options)
    _logging(options.access_log)
    _tune_interpreter()
    return create_app(options, settings=settings)


def run(options: ServeOptions, *, settings: Settings | None = None) -> None:
    """Serve until SIGINT or SIGTERM: stop accepting, answer in-flight requests, write the
    prediction log, exit.

    Args:
        options: how to serve.
        settings: the workspace settings (default: from the environment).
    """
    import signal

    import uvicorn

    settings = settings or Settings()
    _tune_interpreter()
    # Uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the handler
    # that was there before it started: make that a clean exit, not a death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    _logging(options.access_log)
    _raise_descriptor_limit(options.max_connections)
    limits = ConnectionLimits(
        header_timeout=options.header_timeout,
        body_timeout=options.body_timeout,
        max_connections=options.max_connections,
    )
    common: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "access_log": False,  # the server writes its own structured access log
        "log_level": "warning",
        "http": limited_protocol(limits),
        "timeout_graceful_shutdown": options.graceful_shutdown,
        "backlog": 4096,
        "lifespan": "on",
        **_tls(options),
    }
    if options.workers == 1:
        from forgeml.http._app import create_app

        uvicorn.run(create_app(options, settings=settings), **common)
        return
    # Worker processes rebuild the settings from the environment.
    os.environ["FORGEML_SERVE_OPTIONS"] = options.model_dump_json()
    os.environ["FORGEML_HOME"] = str(settings.home.resolve())
    if settings.store_url:
        os.environ["FORGEML_STORE_URL"] = settings.store_url
    if settings.artifacts:
        os.environ["FORGEML_ARTIFACTS"] = str(settings.artifacts.resolve())
    uvicorn.run(
        "forgeml.http._server:app_from_settings",
        factory=True,
        workers=options.workers,
        **common,
    )
