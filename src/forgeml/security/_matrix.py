"""The written authorization matrix: which role may do what, on every surface.

One table of *actions* (what is done, and which roles may do it) and three tables mapping each
surface onto an action: every CLI command, every HTTP route and every use case of the Python
API (``forgeml.workflows``). The tests generate the full matrix (every entry x every role) from
these tables, and ``forgeml keys roles`` and the README print it.

``PUBLIC`` actions need no key (health checks, the OpenAPI document, ``forgeml version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACTIONS",
    "CLI_COMMANDS",
    "HTTP_ROUTES",
    "PUBLIC",
    "PYTHON_API",
    "ROLES",
    "Action",
    "allowed",
    "render_matrix",
]

#: The roles, from least to most trusted.
ROLES: Final = ("viewer", "scientist", "deployer", "admin")


@dataclass(frozen=True, slots=True)
class Action:
    """Something a principal does.

    Attributes:
        name: the action's name (``alias.move``).
        roles: the roles allowed to do it (empty for a public action).
        description: what it is, for messages and the rendered matrix.
        changes_state: it writes (HTTP bodies must be JSON; it is audited).
    """

    name: str
    roles: tuple[str, ...]
    description: str
    changes_state: bool = False


_ALL = ROLES
_SCI = ("scientist", "admin")
_DEP = ("deployer", "admin")
_ADM = ("admin",)

#: Every action, by name.
ACTIONS: Final[dict[str, Action]] = {
    a.name: a
    for a in (
        Action("public", (), "health checks, the API description, the version"),
        Action("read", _ALL, "read runs, datasets, models, routes and metrics"),
        Action("predict", _ALL, "predict and explain with a served or registered model"),
        Action("feedback", ("scientist", "deployer", "admin"), "send labels", True),
        Action(
            "feedback.correct",
            ("scientist", "deployer", "admin"),
            "correct labels already sent (a new revision, audited)",
            True,
        ),
        Action("data.write", _SCI, "add data, record a split", True),
        Action("train", _SCI, "train (and register) a model", True),
        Action("evaluate", _SCI, "evaluate or audit a model (recorded as a run)", True),
        Action("register", _SCI, "register a model version", True),
        Action("alias.move", _DEP, "move or remove an alias (promote)", True),
        Action("model.status", _DEP, "archive, restore or retire a version", True),
        Action("route.write", _DEP, "set or clear a traffic route", True),
        Action(
            "monitor.write",
            ("scientist", "deployer", "admin"),
            "check alert rules (records and sends alerts)",
            True,
        ),
        Action(
            "loop.run",
            _ADM,
            "run a retraining loop (it trains, registers, routes and promotes as 'loop')",
            True,
        ),
        Action("serve.admin", _DEP, "read the server's routing table"),
        Action("serve.run", _DEP, "start a prediction server"),
        Action("quickstart", _ADM, "run the quickstart (trains, registers, promotes)", True),
        Action("audit.read", _ADM, "read, verify and export the audit log"),
        Action("keys.manage", _ADM, "create, list and revoke API keys", True),
        Action("guards.manage", _ADM, "protect aliases (alias guards)", True),
        Action(
            "workspace.admin",
            _ADM,
            "create or upgrade the workspace, re-encrypt its artifacts, collect unused files",
            True,
        ),
    )
}
PUBLIC: Final = "public"

#: Every CLI command (its path after ``forgeml``) -> action.
CLI_COMMANDS: Final[dict[str, str]] = {
    "version": "public",
    "init": "workspace.admin",
    "quickstart": "quickstart",
    "train": "train",
    "evaluate": "evaluate",
    "predict": "predict",
    "serve": "serve.run",
    "runs list": "read",
    "runs artifacts": "read",
    "runs show": "read",
    "runs compare": "read",
    "data add": "data.write",
    "data list": "read",
    "data show": "read",
    "data validate": "read",
    "data diff": "read",
    "data report": "read",
    "data split": "data.write",
    "fairness audit": "evaluate",
    "feedback correct": "feedback.correct",
    "feedback history": "read",
    "models list": "read",
    "models show": "read",
    "models promote": "alias.move",
    "models threshold": "register",
    "models archive": "model.status",
    "models restore": "model.status",
    "models retire": "model.status",
    "models history": "read",
    "models compare": "read",
    "models lineage": "read",
    "models card": "read",
    "models import-mlflow": "register",
    "routes set": "route.write",
    "routes show": "read",
    "routes clear": "route.write",
    "monitor drift": "read",
    "monitor report": "read",
    "monitor alerts check": "monitor.write",
    "monitor alerts list": "read",
    "monitor watch": "monitor.write",
    "loop history": "read",
    "loop run": "loop.run",
    "loop watch": "loop.run",
    "keys create": "keys.manage",
    "keys list": "keys.manage",
    "keys revoke": "keys.manage",
    "keys roles": "public",
    "aliases protect": "guards.manage",
    "aliases unprotect": "guards.manage",
    "aliases list": "read",
    "audit list": "audit.read",
    "audit verify": "audit.read",
    "audit export": "audit.read",
    "artifacts reencrypt": "workspace.admin",
    "gc": "workspace.admin",
}

#: Every HTTP route (method, path template) -> action.
HTTP_ROUTES: Final[dict[tuple[str, str], str]] = {
    ("GET", "/health/live"): "public",
    ("GET", "/health/ready"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/metrics"): "read",
    ("GET", "/v1/models"): "read",
    ("GET", "/v1/models/{name}"): "read",
    ("POST", "/v1/models/{name}/predict"): "predict",
    ("POST", "/v1/models/{name}/explain"): "predict",
    ("POST", "/v1/feedback"): "feedback",
    ("POST", "/v1/feedback/corrections"): "feedback.correct",
    ("POST", "/invocations"): "predict",
    ("POST", "/v1/models/{name}/invocations"): "predict",
    ("GET", "/ping"): "public",
    ("GET", "/version"): "public",
    ("GET", "/v2"): "read",
    ("GET", "/v2/health/live"): "public",
    ("GET", "/v2/health/ready"): "public",
    ("GET", "/v2/models/{name}"): "read",
    ("GET", "/v2/models/{name}/ready"): "read",
    ("GET", "/v2/models/{name}/versions/{version}"): "read",
    ("GET", "/v2/models/{name}/versions/{version}/ready"): "read",
    ("POST", "/v2/models/{name}/infer"): "predict",
    ("POST", "/v2/models/{name}/versions/{version}/infer"): "predict",
    ("GET", "/admin/routes"): "serve.admin",
    ("PUT", "/admin/models/{name}/route"): "route.write",
    ("DELETE", "/admin/models/{name}/route"): "route.write",
    ("POST", "/admin/models/{name}/promote"): "alias.move",
}

#: Every use case of ``forgeml.workflows`` -> action.
PYTHON_API: Final[dict[str, str]] = {
    "add_data": "data.write",
    "split_data": "data.write",
    "train_model": "train",
    "evaluate_model": "evaluate",
    "promote": "alias.move",
    "remove_alias": "alias.move",
    "change_status": "model.status",
    "set_route": "route.write",
    "clear_route": "route.write",
    "run_artifacts": "read",
    "download_run_artifacts": "read",
    "score_file": "predict",
    "correct_feedback": "feedback.correct",
    "label_history": "read",
    "quickstart": "quickstart",
    "served_model_report": "read",
    "check_alerts": "monitor.write",
    "watch_alerts": "monitor.write",
    "create_key": "keys.manage",
    "list_keys": "keys.manage",
    "revoke_key": "keys.manage",
    "protect_alias": "guards.manage",
    "unprotect_alias": "guards.manage",
    "list_audit": "audit.read",
    "verify_audit": "audit.read",
    "reencrypt_artifacts": "workspace.admin",
    "collect_garbage": "workspace.admin",
}


def allowed(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action`` (a public action: anyone, even without a role)."""
    spec = ACTIONS[action]
    return not spec.roles or (role is not None and role in spec.roles)


def render_matrix() -> str:
    """The matrix as Markdown tables: actions x roles, then each surface's mapping."""
    mark = {True: "yes", False: "-"}
    lines = ["| action | what | " + " | ".join(ROLES) + " |", "|---|---|" + "---|" * len(ROLES)]
    for a in ACTIONS.values():
        cells = " | ".join(mark[allowed(r, a.name)] for r in ROLES)
        lines.append(f"| `{a.name}` | {a.description} | {cells} |")
    lines += ["", "| CLI command | action |", "|---|---|"]
    lines += [f"| `forgeml {c}` | `{a}` |" for c, a in CLI_COMMANDS.items()]
    lines += ["", "| HTTP route | action |", "|---|---|"]
    lines += [f"| `{m} {p}` | `{a}` |" for (m, p), a in HTTP_ROUTES.items()]
    lines += ["", "| Python (`forgeml.workflows`) | action |", "|---|---|"]
    lines += [f"| `{f}` | `{a}` |" for f, a in PYTHON_API.items()]
    return "\n".join(lines) + "\n"
