"""One model's retraining loop: check the triggers, retrain, compare, gate, roll out, promote or
roll back. Every step is a use case of the workflows layer called with the loop's principal.

A pass (``run_pass``) holds the model's lease for its whole length (renewed by a thread while a
step runs), so two loops, on one machine or several, never act on the same model at once. The
loop's position lives in the store (``LoopStore.state``: phase ``idle``, ``retraining`` or
``rollout``, the cycle number, the champion's baseline); each step of a retraining cycle is
recorded when it starts and again, together with its decisions and the next state, in one
transaction when it ends. A loop killed mid-step finds the step ``started`` on its next pass
and runs it again under the same key; a finished step is never run again; so each step
finishes once. Training, the long step, is found again by its run name if it registered a
version before the crash.

A cycle: ``assemble`` (reference data plus the newly labelled rows of the prediction log, the
most recent ones held out as the comparison window; data-quality gate) -> ``train`` (the
champion's ``TrainConfig``, warm-started from its best configurations, the policy's budget) ->
``compare`` (both models on the held-out window, paired bootstrap interval of the lead) ->
``gates`` (metric, fairness, latency, size) -> ``rollout`` (alias ``candidate``, a canary or
shadow route; or ``direct`` promotion). Later passes watch the rollout and ``promote`` the
candidate or ``rollback``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeml._json import loads
from forgeml.errors import ConflictError, InputError, NotFoundError
from forgeml.loop._policy import LoopPolicy
from forgeml.loop._scoring import (
    Outputs,
    challenger_passes,
    independent_lead,
    logged_outputs,
    metric_value,
    model_outputs,
    paired_lead,
    resolve_metric,
)
from forgeml.loop._triggers import (
    TriggerResult,
    check_drift,
    check_new_labels,
    check_performance,
    check_schedule,
)
from forgeml.security import Principal
from forgeml.store import LoopDecision, ModelVersionRecord
from forgeml.workflows import (
    Context,
    add_data,
    change_status,
    clear_route,
    promote,
    remove_alias,
    set_route,
    train_model,
)

__all__ = ["LOOP_PRINCIPAL", "LoopRunner", "PassReport", "loop_principal"]

_log = logging.getLogger("forgeml.loop")

#: Who the loop acts as, recorded on every dataset, run, version, alias and route it changes.
LOOP_PRINCIPAL = Principal("loop", "loop")
CANDIDATE = "candidate"


def loop_principal(key: Principal | None = None) -> Principal:
    """The loop's principal: ``loop`` (kind ``loop``), acting with the API key ``key`` was
    authenticated by when access control is on (its role must allow ``loop.run``: admin)."""
    if key is None or key.key_id is None:
        return LOOP_PRINCIPAL
    return Principal("loop", "loop", role=key.role, key_id=key.key_id)


_LOG_COLUMNS = ("request_id", "version", "time_ms", "latency_ms", "prediction", "label")
_WHOLE = 10**14  # one window covering every logged time
_RUN_TEST_SIZE = 0.05  # a retraining's own test split: the loop compares on its window


@dataclass(frozen=True)
class PassReport:
    """What one pass did.

    Attributes:
        model: the model.
        acted: whether this pass held the lease and ran.
        phase: the loop's phase after the pass (``idle``, ``retraining``, ``rollout``).
        cycle: the current (or last) retraining cycle.
        actions: one line per thing done (``retrained -> version 4``...).
        decisions: the decisions recorded in this pass.
        holder: who holds the lease (this loop, or the one that kept it from running).
    """

    model: str
    acted: bool
    phase: str
    cycle: int
    actions: tuple[str, ...] = ()
    decisions: tuple[LoopDecision, ...] = ()
    holder: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "model": self.model,
            "acted": self.acted,
            "phase": self.phase,
            "cycle": self.cycle,
            "actions": list(self.actions),
            "decisions": [d.to_dict() for d in self.decisions],
            "holder": self.holder,
        }


@dataclass
class _Pending:
    """Decisions a step makes, written with the step's end in one transaction."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, kind: str, name: str, passed: bool, summary: str, detail: Mapping[str, Any] = {}
    ) -> None:
        self.items.append(
            {"kind": kind, "name": name, "passed": passed, "summary": summary, "detail": detail}
        )


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` (``host:pid:suffix``) names a process of this host that is gone."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


def default_holder() -> str:
    """A lease holder name unique to this process: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LoopRunner:
    """The retraining loop of one model under one policy.

    Args:
        ctx: the workspace and the acting principal (the loop's own, ``kind="loop"``).
        policy: the model's policy.
        clock: milliseconds since the epoch now (tests and replays pass stream time).
        holder: this loop's lease holder name (default: host, pid and a random suffix).
        lease_seconds: how long the lease lasts unless renewed (renewed every third of it).
        on_event: called with one line per action (an interface prints them).
    """

    def __init__(
        self,
        ctx: Context,
        policy: LoopPolicy,
        *,
        clock: Callable[[], int] | None = None,
        holder: str | None = None,
        lease_seconds: float = 300.0,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if ctx.principal.kind != "loop":
            raise InputError(
                f"The loop acts as a principal of kind 'loop'; got {ctx.principal.kind!r}"
            )
        if lease_seconds <= 0:
            raise InputError(f"lease_seconds must be positive; got {lease_seconds}")
        self.ctx = ctx
        self.ws = ctx.workspace
        self.policy = policy
        self.model = policy.model
        self._clock = clock or (lambda: int(time.time() * 1000))
        self.holder = holder or default_holder()
        self.lease_ms = int(lease_seconds * 1000)
        self._on_event = on_event
        self._actions: list[str] = []
        self._models: dict[int, Any] = {}
        self._metrics: dict[int, str] = {}
        self._decisions: list[LoopDecision] = []

    # -- one pass -----------------------------------------------------------------------------

    def run_pass(self) -> PassReport:
        """Check the triggers and act once: resume or run a retraining cycle, or watch a
        rollout and promote or roll back.

        Returns:
            What the pass did (``acted`` is False when another loop holds the lease).

        Raises:
            NotFoundError: the model or its champion alias does not exist.
            AuthenticationError: access control is on and the loop has no valid key.
            PermissionDeniedError: its key's role may not run a loop (admin only).
        """
        self.ctx.authorize("loop.run")
        self.ws.models.get_model(self.model)
        self._actions, self._decisions = [], []
        if not self._take_lease():
            lease = self.ws.loop.lease(self.model)
            state = self.ws.loop.state(self.model)
            return PassReport(
                self.model,
                False,
                state.get("phase", "idle"),
                int(state.get("cycle", 0)),
                (f"skipped: {lease.holder if lease else 'another loop'} holds the lease",),
                holder=lease.holder if lease else "",
            )
        try:
            with self._renewing():
                state = self._initial_state()
                phase = state.get("phase", "idle")
                if phase == "retraining":
                    self._event(f"resuming cycle {state['cycle']}")
                    state = self._cycle(state)
                elif phase == "rollout":
                    state = self._observe(state)
                else:
                    state = self._check(state)
        finally:
            self.ws.loop.release_lease(self.model, self.holder)
        return PassReport(
            self.model,
            True,
            state.get("phase", "idle"),
            int(state.get("cycle", 0)),
            tuple(self._actions),
            tuple(self._decisions),
            self.holder,
        )

    def _take_lease(self) -> bool:
        """Take the model's lease; a lease left by a dead process of this host (killed
        mid-pass) is taken over at once instead of after it expires."""
        store = self.ws.loop
        if store.acquire_lease(self.model, self.holder, ttl_ms=self.lease_ms):
            return True
        lease = store.lease(self.model)
        if lease is not None and _dead_here(lease.holder):
            _log.warning("%s: taking over the lease of %s (not running)", self.model, lease.holder)
            store.release_lease(self.model, lease.holder)
            return store.acquire_lease(self.model, self.holder, ttl_ms=self.lease_ms)
        return False

    def _event(self, line: str) -> None:
        self._actions.append(line)
        _log.info("%s: %s", self.model, line)
        if self._on_event is not None:
            self._on_event(line)

    @contextmanager
    def _renewing(self) -> Iterator[None]:
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease_ms / 3000):
                try:
                    if not self.ws.loop.acquire_lease(
                        self.model, self.holder, ttl_ms=self.lease_ms
                    ):
                        _log.warning("%s: lost the loop lease", self.model)
                except Exception:  # a missed renewal is retried; the lease outlives it
                    _log.warning("%s: renewing the loop lease failed", self.model, exc_info=True)

        thread = threading.Thread(target=renew, name=f"loop-lease-{self.model}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _initial_state(self) -> dict[str, Any]:
        state = self.ws.loop.state(self.model)
        if not state:
            champion = self._champion()
            state = {
                "phase": "idle",
                "cycle": 0,
                "champion_version": champion.version,
                "since_ms": None,
                "started_ms": self._clock(),
                "last_retrain_ms": None,
                "trained_until_ms": None,
                "baseline": None,
            }
            self.ws.loop.put_state(self.model, state)
        return state

    def _champion(self) -> ModelVersionRecord:
        try:
            return self.ws.models.resolve(self.model, self.policy.champion)
        except NotFoundError:
            raise NotFoundError(
                f"Model {self.model!r} has no {self.policy.champion!r} alias: the loop improves "
                "the version it names (set it with forgeml models promote)"
            ) from None

    def _decide(
        self,
        kind: str,
        name: str,
        passed: bool,
        summary: str,
        detail: Mapping[str, Any] | None = None,
        cycle: int | None = None,
    ) -> LoopDecision:
        decision = self.ws.loop.record_decision(
            self.model,
            kind=kind,
            name=name,
            passed=passed,
            summary=summary,
            detail=detail,
            cycle=cycle,
            actor=self.ctx.principal.name,
        )
        self._decisions.append(decision)
        return decision

    # -- reading the prediction log -------------------------------------------------------------

    def _log(
        self,
        *,
        version: int | None = None,
        role: str = "primary",
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        return self.ws.predlog.predictions(
            self.model, version=version, since_ms=since_ms, role=role, limit=limit
        )

    @staticmethod
    def _inputs(rows: pd.DataFrame) -> list[str]:
        return [c for c in rows.columns if c not in _LOG_COLUMNS and not c.startswith("proba_")]

    # -- triggers ------------------------------------------------------------------------------

    def _check(self, state: dict[str, Any]) -> dict[str, Any]:
        policy, triggers = self.policy, self.policy.triggers
        champion = self._champion()
        if champion.version != state.get("champion_version"):
            # someone promoted another version by hand: it is the champion from now on
            state = {**state, "champion_version": champion.version, "baseline": None}
        now = self._clock()
        results: list[TriggerResult] = []
        task = champion.task
        metric = self._metric_name(champion)
        rows = self._champion_rows(champion.version, state)
        if triggers.performance is not None:
            loaded = self._load(champion.version)
            result, baseline = check_performance(
                triggers.performance,
                rows,
                metric=triggers.performance.metric or metric,
                task=task,
                classes=loaded.classes,
                baseline=state.get("baseline"),
                rearm_ms=state.get("rearm_ms"),
            )
            state = {**state, "baseline": baseline}
            results.append(result)
        if triggers.drift is not None:
            loaded = self._load(champion.version)
            recent = rows[self._inputs(rows)] if len(rows) else rows
            results.append(
                check_drift(triggers.drift, loaded.reference(), recent, seed=policy.seed)
            )
        if triggers.schedule is not None:
            since = state.get("last_retrain_ms") or state.get("started_ms") or now
            results.append(check_schedule(triggers.schedule, int(since), now))
        if triggers.new_labels is not None:
            # rows newer than the champion's training data, and after a retraining that kept
            # the champion, rows answered since that attempt only
            marks = [m for m in (state.get("trained_until_ms"), state.get("rearm_ms")) if m]
            cutoff = max(int(m) for m in marks) if marks else None
            new = self._labelled(self._log(since_ms=cutoff))
            if cutoff is not None:
                new = new[new["time_ms"] > cutoff]
            results.append(check_new_labels(triggers.new_labels, len(new)))
        fired = [r for r in results if r.fired]
        last = state.get("last_retrain_ms")
        cooling = (
            bool(fired)
            and last is not None
            and now - int(last) < policy.budget.min_hours_between * 3_600_000
        )
        summary = "; ".join(f"{r.name}: {r.summary}" for r in results)
        if cooling:
            summary = f"fired but within {policy.budget.min_hours_between} h of the last " + (
                f"retraining; {summary}"
            )
        self._decide(
            "trigger",
            ",".join(r.name for r in fired) or "none",
            bool(fired) and not cooling,
            summary,
            {"triggers": [r.to_dict() for r in results], "champion": champion.version},
        )
        if not fired or cooling:
            self.ws.loop.put_state(self.model, state)
            return state
        cycle = int(state.get("cycle", 0)) + 1
        state = {
            **state,
            "phase": "retraining",
            "cycle": cycle,
            "champion_version": champion.version,
            "cycle_started_ms": now,
            # the champion's decay was measured (not merely due): the comparison may then
            # accept a challenger that is not worse (MetricGate.tolerance)
            "decayed": [r.name for r in fired if r.name in ("performance", "drift")],
        }
        self.ws.loop.put_state(self.model, state)
        self._event(f"cycle {cycle}: {', '.join(r.name for r in fired)} fired; retraining")
        return self._cycle(state)

    def _champion_rows(self, version: int, state: dict[str, Any]) -> pd.DataFrame:
        """The champion's answered rows the triggers need: after its baseline window when it
        has one (the most recent few windows first, all of them when those hold too few
        labels), else all of them."""
        since = state.get("since_ms")
        baseline = state.get("baseline")
        perf = self.policy.triggers.performance
        if baseline is None or perf is None:
            return self._log(version=version, since_ms=since)
        after = int(baseline["until_ms"]) + 1
        recent = self._log(version=version, since_ms=after, limit=4 * perf.window_rows)
        if len(self._labelled(recent)) >= perf.window_rows or perf.estimated:
            return recent
        return self._log(version=version, since_ms=after)

    def _metric_name(self, champion: ModelVersionRecord) -> str:
        if self.policy.gates.metric.metric:
            return self.policy.gates.metric.metric
        if champion.version in self._metrics:
            return self._metrics[champion.version]
        name = "rmse" if champion.task == "regression" else "accuracy"
        if champion.run_id:
            chosen = self.ws.runs.get_run(champion.run_id).params.get("metric")
            if chosen:
                name = str(chosen)
        self._metrics[champion.version] = name
        return name

    def _load(self, version: int) -> Any:
        if version not in self._models:
            from forgeml.registry import load

            self._models[version] = load(f"{self.model}@{version}", workspace=self.ws)
        return self._models[version]

    @staticmethod
    def _labelled(rows: pd.DataFrame) -> pd.DataFrame:
        if "label" not in rows.columns:
            return rows.iloc[:0]
        return rows[rows["label"].notna()]

    # -- a retraining cycle --------------------------------------------------------------------

    def _step(
        self,
        state: dict[str, Any],
        kind: str,
        work: Callable[[_Pending], tuple[dict[str, Any], dict[str, Any]]],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run one step once: ``work`` returns (output, next state); a finished step returns
        its recorded output and the state as stored."""
        cycle = int(state["cycle"])
        key = f"cycle-{cycle}/{kind}"
        step = self.ws.loop.start_step(
            self.model, cycle=cycle, kind=kind, key=key, holder=self.holder
        )
        if step.state == "finished":
            return dict(step.output or {}), state
        pending = _Pending()
        try:
            output, new_state = work(pending)
        except Exception as e:
            message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            self.ws.loop.fail_step(step.step_id, message)
            raise
        with self.ws.unit_of_work():
            for item in pending.items:
                self._decide(cycle=cycle, **item)
            self.ws.loop.finish_step(step.step_id, output)
            self.ws.loop.put_state(self.model, new_state)
        return output, new_state

    def _cycle(self, state: dict[str, Any]) -> dict[str, Any]:
        assembled, state = self._step(state, "assemble", lambda p: self._assemble(state, p))
        if not assembled.get("passed", False):
            return state
        trained, state = self._step(state, "train", lambda p: self._train(state, assembled, p))
        compared, state = self._step(
            state, "compare", lambda p: self._compare(state, assembled, trained, p)
        )
        gated, state = self._step(
            state, "gates", lambda p: self._gates(state, assembled, trained, compared, p)
        )
        if not gated.get("passed", False):
            return state
        if self.policy.recipe.refit:
            refit, state = self._step(
                state, "refit", lambda p: self._refit(state, assembled, trained, p)
            )
            trained = {
                **trained,
                "version": refit["version"],
                "compared_version": trained["version"],
            }
        _, state = self._step(state, "rollout", lambda p: self._rollout(state, trained, p))
        return state

    def _end_cycle(self, state: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """The state after a cycle that kept the champion: idle, triggers re-armed on rows
        answered from now on."""
        return {**state, "phase": "idle", "rearm_ms": self._clock(), **changes}

    # assemble -------------------------------------------------------------------------------

    def _recipe(self, champion: ModelVersionRecord) -> tuple[Any, str]:
        """The champion's ``TrainConfig`` and its reference dataset."""
        from forgeml.train import TrainConfig

        if not champion.run_id:
            raise InputError(
                f"{champion.ref} has no training run: the loop retrains with the champion's "
                "recipe (train it with forgeml train)"
            )
        run = self.ws.runs.get_run(champion.run_id)
        found = [a for a in run.artifacts if a.path == "train_config.json"]
        if not found:
            raise InputError(f"The training run of {champion.ref} recorded no train_config.json")
        config = TrainConfig.from_json(self.ws.artifacts.get_bytes(found[0].digest))
        reference = self.policy.recipe.dataset or champion.dataset or run.params.get("dataset")
        if not reference:
            raise InputError(
                f"{champion.ref} names no training dataset; set recipe.dataset in the policy"
            )
        return config, str(reference)

    def _assemble(self, state: dict[str, Any], pending: _Pending) -> tuple[dict, dict]:
        from forgeml import data as datasets

        policy = self.policy
        champion = self.ws.models.get_version(self.model, int(state["champion_version"]))
        config, reference_ref = self._recipe(champion)
        reference_version = datasets.get(reference_ref, workspace=self.ws)
        reference = datasets.load(reference_version, workspace=self.ws)
        target = config.target or reference_version.target
        if target is None:
            raise InputError(f"No target: neither {champion.ref}'s recipe nor {reference_ref}")
        since = state.get("since_ms")
        window = policy.recipe.window
        if window.kind == "recency_weighted":
            # a row ten half-lives older than the newest request would be kept with probability
            # 2**-10 at most: not read at all, so the cost of a retraining does not grow with
            # the length of the log (the log's own time, not the clock: a replay windows alike)
            newest = self._log(limit=1)
            if len(newest):
                span = int(10 * float(window.half_life_days or 1) * 86_400_000)
                horizon = int(newest["time_ms"].max()) - span
                since = horizon if since is None else max(int(since), horizon)
        log = self._labelled(self._log(since_ms=since))
        inputs = self._inputs(log)
        cutoff = state.get("trained_until_ms")
        new = log if cutoff is None else log[log["time_ms"] > cutoff]
        quality = policy.gates.data_quality
        eval_n = policy.recipe.eval_rows
        problems = []
        if len(new) < quality.min_rows + eval_n:
            problems.append(
                f"{len(new):,} newly labelled rows, needs {quality.min_rows + eval_n:,} "
                f"({quality.min_rows:,} to learn from and {eval_n:,} to compare on)"
            )
        missing = {c: float(new[c].isna().mean()) for c in inputs} if len(new) else {}
        worst = max(missing.items(), key=lambda kv: kv[1], default=(None, 0.0))
        if worst[0] is not None and worst[1] > quality.max_missing_share:
            problems.append(
                f"column {worst[0]!r} is {worst[1]:.0%} missing in the new rows "
                f"(at most {quality.max_missing_share:.0%})"
            )
        absent = [c for c in inputs if c not in reference.columns]
        if absent:
            problems.append(f"logged columns {absent} are not in the reference {reference_ref}")
        unlabelled_classes = (
            set(map(str, new["label"].unique())) - set(map(str, reference[target].unique()))
            if len(new)
            else set()
        )
        if unlabelled_classes and champion.task != "regression":
            problems.append(f"labels never seen in the reference: {sorted(unlabelled_classes)}")
        detail = {
            "new_rows": len(new),
            "reference": reference_version.ref,
            "missing_share": missing,
            "columns": inputs,
        }
        if problems:
            pending.add("gate", "data_quality", False, "; ".join(problems), detail)
            self._event(f"cycle {state['cycle']}: data-quality gate failed")
            return {"passed": False, **detail}, self._end_cycle(
                state, last_retrain_ms=self._clock()
            )
        # the most recent labelled rows are held out: neither model trained on them
        holdout = log.iloc[-eval_n:]
        learn = log.iloc[:-eval_n]
        logged = learn[inputs].copy()
        logged[target] = learn["label"].to_numpy()
        for column in inputs:
            # a column that does not convert is kept as logged; training infers its kind
            with suppress(TypeError, ValueError):
                logged[column] = logged[column].astype(reference[column].dtype)
        # ages count from the newest labelled row (the data's own present), so a replayed or
        # late-labelled log windows the same way as a live one
        newest = float(log["time_ms"].max())
        ages_ms = (newest - learn["time_ms"]).to_numpy(dtype=float)
        ref_rows = reference.copy()
        if window.kind == "last_days":
            keep = ages_ms <= float(window.days or 0) * 86_400_000
            logged, ref_rows = logged[keep], ref_rows.iloc[:0]
        frame = pd.concat([ref_rows, logged], ignore_index=True)
        if window.kind == "last_rows":
            frame = frame.iloc[-int(window.rows or 0) :]
        elif window.kind == "recency_weighted":
            # older rows are thinned: a row half_life_days old is kept with probability 1/2;
            # reference rows count as old as the oldest logged row
            half = float(window.half_life_days or 1) * 86_400_000
            oldest = float(ages_ms.max()) if len(ages_ms) else 0.0
            ages = np.concatenate([np.full(len(ref_rows), oldest), ages_ms])
            rng = np.random.default_rng(self.policy.seed + int(state["cycle"]))
            frame = frame[rng.random(len(frame)) < np.power(0.5, ages / half)]
        if len(frame) < quality.min_rows:
            why = (
                f"the {window.kind} window leaves {len(frame):,} rows to learn from, fewer "
                f"than {quality.min_rows:,}"
            )
            pending.add("gate", "data_quality", False, why, detail)
            self._event(f"cycle {state['cycle']}: data-quality gate failed")
            return {"passed": False, **detail}, self._end_cycle(
                state, last_retrain_ms=self._clock()
            )
        pending.add(
            "gate",
            "data_quality",
            True,
            f"{len(new):,} newly labelled rows, largest missing share "
            f"{worst[1]:.0%} ({worst[0]}), columns match {reference_version.ref}; "
            f"{len(frame):,} rows to learn from ({window.kind} window)",
            detail,
        )
        holdout_frame = holdout[inputs].copy()
        holdout_frame[target] = holdout["label"].to_numpy()
        note = (
            f"loop cycle {state['cycle']}: {reference_version.ref} ({len(ref_rows):,} rows kept) "
            f"+ {len(logged):,} labelled rows of {self.model}'s prediction log "
            f"(requests {int(learn['time_ms'].min()) if len(learn) else 0}.."
            f"{int(learn['time_ms'].max()) if len(learn) else 0} ms), window {window.kind}"
        )
        # the champion's PII policy carries over (its stored values are already hashed or
        # masked, and hashing is idempotent): the challenger takes requests the same way
        pii = {c: r.action for c, r in reference_version.pii.rules.items()}
        train_set = add_data(
            self.ctx,
            frame,
            name=f"{self.model}-loop",
            target=target,
            sensitive=tuple(reference_version.sensitive),
            pii={c: a for c, a in pii.items() if c in frame.columns and c != target},
            source_note=note,
        ).version
        eval_set = add_data(
            self.ctx,
            holdout_frame,
            name=f"{self.model}-loop-eval",
            target=target,
            sensitive=tuple(c for c in reference_version.sensitive if c in holdout_frame),
            pii={c: a for c, a in pii.items() if c in holdout_frame.columns and c != target},
            source_note=f"loop cycle {state['cycle']}: the latest {len(holdout):,} labelled "
            f"rows of {self.model}'s prediction log, held out from training",
        ).version
        self._event(
            f"cycle {state['cycle']}: assembled {train_set.ref} ({train_set.n_rows:,} rows) "
            f"and held out {eval_set.ref} ({eval_set.n_rows:,} rows)"
        )
        return (
            {
                "passed": True,
                "dataset": train_set.ref,
                "eval_dataset": eval_set.ref,
                "reference": reference_version.ref,
                "logged_rows": len(logged),
                "reference_rows": len(ref_rows),
                "eval_rows": len(holdout),
                "trained_until_ms": int(learn["time_ms"].max()) if len(learn) else None,
                "eval_until_ms": int(holdout["time_ms"].max()),
                "target": target,
            },
            state,
        )

    # train ----------------------------------------------------------------------------------

    def _train(
        self, state: dict[str, Any], assembled: dict[str, Any], pending: _Pending
    ) -> tuple[dict, dict]:
        champion = self.ws.models.get_version(self.model, int(state["champion_version"]))
        config, _ = self._recipe(champion)
        budget = self.policy.budget
        run_name = f"loop {self.model} cycle {state['cycle']}"
        again = self._registered_by(run_name)
        warm = self._warm_start(champion) if budget.warm_start else ()
        if again is not None:
            version, seconds = again, None
            self._event(f"cycle {state['cycle']}: training had registered {again.ref}; kept")
        else:
            changes: dict[str, Any] = {
                "target": assembled["target"],
                "time_budget": budget.time_budget,
                "max_trials": budget.max_trials,
                "seed": self.policy.seed + int(state["cycle"]),
                "split": None,
                # the loop compares on its own held-out window: the run's test split (scored
                # for the record only) is kept small so the challenger learns from more rows
                "test_size": _RUN_TEST_SIZE,
                "evaluate": False,
                "experiment": "loop",
                "run_name": run_name,
                "warm_start": warm,
            }
            if config.time_column is not None:
                # the server does not log a time column the model does not take: the hold-out
                # of the retraining is drawn at random
                changes["time_column"] = None
            started = time.monotonic()
            outcome = train_model(
                self.ctx,
                assembled["dataset"],
                config.replace(**changes),
                model_name=self.model,
            )
            seconds = round(time.monotonic() - started, 3)
            assert outcome.registered is not None
            version = outcome.registered
            self._event(f"cycle {state['cycle']}: trained {version.ref} in {seconds:.1f} s")
        first = self.ws.runs.get_run(champion.run_id) if champion.run_id else None
        first_seconds = (
            round((first.end_time - first.start_time) / 1000, 3)
            if first is not None and first.end_time
            else None
        )
        return (
            {
                "version": version.version,
                "run_id": version.run_id,
                "dataset": assembled["dataset"],
                "seconds": seconds,
                "champion_training_seconds": first_seconds,
                "warm_start": len(warm),
            },
            state,
        )

    def _registered_by(self, run_name: str) -> ModelVersionRecord | None:
        """The version a training of this name registered before a crash, if any."""
        for record in reversed(self.ws.models.list_versions(self.model)):
            if record.run_id and record.created_by == self.ctx.principal.name:
                try:
                    if self.ws.runs.get_run(record.run_id).name == run_name:
                        return record
                except NotFoundError:
                    continue
        return None

    def _warm_start(self, champion: ModelVersionRecord, top: int = 3) -> tuple[dict, ...]:
        if not champion.run_id:
            return ()
        run = self.ws.runs.get_run(champion.run_id)
        found = [a for a in run.artifacts if a.path == "leaderboard.csv"]
        if not found:
            return ()
        import io

        board = pd.read_csv(io.BytesIO(self.ws.artifacts.get_bytes(found[0].digest)))
        from forgeml.train import FAMILIES

        starts = []
        for _, row in board.iterrows():
            if row.get("model") in FAMILIES and isinstance(row.get("params"), str):
                starts.append({"model": row["model"], "params": dict(loads(row["params"]))})
            if len(starts) >= top:
                break
        return tuple(starts)

    # refit ----------------------------------------------------------------------------------

    def _refit(
        self,
        state: dict[str, Any],
        assembled: dict[str, Any],
        trained: dict[str, Any],
        pending: _Pending,
    ) -> tuple[dict, dict]:
        """The passing challenger's best configuration trained once more on its rows plus the
        comparison window (the newest labelled rows, which the comparison needed it not to
        have seen); the compared version is archived, the refit is what the rollout serves."""
        from forgeml import data as datasets

        cycle = int(state["cycle"])
        compared = int(trained["version"])
        challenger = self.ws.models.get_version(self.model, compared)
        config, _ = self._recipe(challenger)
        best = self._warm_start(challenger, top=1)
        run_name = f"loop {self.model} cycle {cycle} refit"
        again = self._registered_by(run_name)
        if again is not None:
            version, seconds = again, None
            dataset_ref = str(again.dataset)
            self._event(f"cycle {cycle}: the refit had registered {again.ref}; kept")
        else:
            learn = datasets.load(assembled["dataset"], workspace=self.ws)
            window = datasets.load(assembled["eval_dataset"], workspace=self.ws)
            source = datasets.get(assembled["dataset"], workspace=self.ws)
            frame = pd.concat([learn, window], ignore_index=True)
            dataset_ref = add_data(
                self.ctx,
                frame,
                name=f"{self.model}-loop",
                target=assembled["target"],
                sensitive=tuple(source.sensitive),
                # the PII policy of the rows it joins (their values are already hashed or
                # masked, and hashing is idempotent)
                pii={
                    c: r.action
                    for c, r in source.pii.rules.items()
                    if c in frame.columns and c != assembled["target"]
                },
                source_note=f"loop cycle {cycle} refit: {assembled['dataset']} + "
                f"{assembled['eval_dataset']} (the comparison window)",
            ).version.ref
            started = time.monotonic()
            outcome = train_model(
                self.ctx,
                dataset_ref,
                config.replace(
                    max_trials=1 if best else config.max_trials,
                    test_size=_RUN_TEST_SIZE,
                    warm_start=best,
                    run_name=run_name,
                    seed=self.policy.seed + cycle,
                ),
                model_name=self.model,
            )
            seconds = round(time.monotonic() - started, 3)
            assert outcome.registered is not None
            version = outcome.registered
        if challenger.status.value == "active":
            change_status(
                self.ctx,
                self.model,
                compared,
                "archived",
                reason=f"loop cycle {cycle}: refit as v{version.version} with its comparison rows",
            )
        family = best[0]["model"] if best else "its search"
        pending.add(
            "refit",
            "window",
            True,
            f"v{compared} passed; its best configuration ({family}) refit as v{version.version} "
            f"on {dataset_ref}: its {assembled['dataset']} plus the {assembled['eval_rows']:,} "
            f"rows of the comparison window{f' in {seconds:.1f} s' if seconds else ''}; "
            f"v{compared} archived, v{version.version} goes to the rollout",
            {"compared": compared, "version": version.version, "dataset": dataset_ref},
        )
        self._event(
            f"cycle {cycle}: refit v{compared} as v{version.version} in {seconds or 0:.1f} s"
        )
        return (
            {
                "version": version.version,
                "compared_version": compared,
                "run_id": version.run_id,
                "dataset": dataset_ref,
                "seconds": seconds,
                "trained_until_ms": assembled.get("eval_until_ms"),
            },
            state,
        )

    # compare and gates ----------------------------------------------------------------------

    def _eval_rows(self, assembled: dict[str, Any]) -> pd.DataFrame:
        from forgeml import data as datasets

        return datasets.load(assembled["eval_dataset"], workspace=self.ws)

    def _compare(
        self,
        state: dict[str, Any],
        assembled: dict[str, Any],
        trained: dict[str, Any],
        pending: _Pending,
    ) -> tuple[dict, dict]:
        gate = self.policy.gates.metric
        champion = self.ws.models.get_version(self.model, int(state["champion_version"]))
        rows = self._eval_rows(assembled)
        target = assembled["target"]
        y = rows[target].to_numpy()
        old, new = self._load(champion.version), self._load(int(trained["version"]))
        spec = resolve_metric(self._metric_name(champion), champion.task)
        lead = paired_lead(
            spec,
            y,
            model_outputs(old, rows.drop(columns=[target])),
            model_outputs(new, rows.drop(columns=[target])),
            confidence=gate.confidence,
            n_bootstrap=gate.n_bootstrap,
            seed=self.policy.seed + int(state["cycle"]),
        )
        decay = self._decay(state, spec, lead.champion)
        passed, rule = challenger_passes(
            lead, margin=gate.margin, tolerance=gate.tolerance, decayed=decay is not None
        )
        floor = gate.margin - gate.tolerance
        if rule == "superiority":
            why = f"lower end {'>=' if passed else '<'} margin {gate.margin}" + (
                "; the champion did not measurably decay" if decay is None else ""
            )
        else:
            # after a measured decay: non-inferiority (not worse on the window, and worse by
            # less than the tolerance at the interval's confidence)
            why = (
                f"lower end < margin {gate.margin}, but the champion decayed ({decay}), so "
                f"non-inferiority decides: lead {'>=' if lead.lead >= gate.margin else '<'} "
                f"{gate.margin} and lower end {'>=' if lead.lower >= floor else '<'} {floor:g} "
                f"(tolerance {gate.tolerance})"
            )
        summary = (
            f"{spec.name} on {lead.rows:,} held-out labelled rows ({assembled['eval_dataset']}, "
            f"neither model trained on them): champion v{champion.version} {lead.champion:.4f}, "
            f"challenger v{trained['version']} {lead.challenger:.4f}; lead {lead.lead:+.4f}, "
            f"{lead.confidence:.0%} interval [{lead.lower:+.4f}, {lead.upper:+.4f}] ({why})"
        )
        detail = {
            **lead.to_dict(),
            "rule": rule,
            "decayed": decay,
            "margin": gate.margin,
            "tolerance": gate.tolerance,
        }
        pending.add("compare", "metric", passed, summary, detail)
        return {"passed": passed, **detail}, state

    def _decay(self, state: dict[str, Any], spec: Any, on_window: float) -> str | None:
        """Why the champion counts as decayed, or None: the performance or drift trigger
        started this retraining, or the champion scores below its baseline (the score that
        chose it, or its first live window) on the comparison window."""
        fired = state.get("decayed") or []
        if isinstance(fired, list) and fired:
            return f"the {' and '.join(fired)} trigger fired"
        baseline = state.get("baseline") or {}
        value = baseline.get("value")
        if value is None or baseline.get("metric") != spec.name or not np.isfinite(on_window):
            return None
        sign = 1.0 if spec.greater_is_better else -1.0
        if sign * (float(value) - on_window) > 0:
            return (
                f"{spec.name} {on_window:.4f} on the window, below its baseline {float(value):.4f}"
            )
        return None

    def _gates(
        self,
        state: dict[str, Any],
        assembled: dict[str, Any],
        trained: dict[str, Any],
        compared: dict[str, Any],
        pending: _Pending,
    ) -> tuple[dict, dict]:
        gates = self.policy.gates
        version = int(trained["version"])
        champion = self.ws.models.get_version(self.model, int(state["champion_version"]))
        challenger = self.ws.models.get_version(self.model, version)
        rows = self._eval_rows(assembled)
        target = assembled["target"]
        X = rows.drop(columns=[target])
        failed: list[str] = []
        if not compared.get("passed", False):
            failed.append("metric")
        new = self._load(version)
        # latency: mean milliseconds per row over the comparison window (best of three)
        times = []
        for _ in range(3):
            mark = time.perf_counter()
            new.predict(X)
            times.append((time.perf_counter() - mark) * 1000 / max(len(X), 1))
        per_row = float(min(times))
        if gates.latency_ms is None:
            pending.add(
                "gate",
                "latency",
                True,
                f"{per_row:.4f} ms per row on {len(X):,} rows (no limit set)",
                {"ms_per_row": per_row},
            )
        else:
            ok = per_row <= gates.latency_ms
            if not ok:
                failed.append("latency")
            pending.add(
                "gate",
                "latency",
                ok,
                f"{per_row:.4f} ms per row on {len(X):,} rows "
                f"({'<=' if ok else '>'} {gates.latency_ms} ms)",
                {"ms_per_row": per_row, "limit": gates.latency_ms},
            )
        size_mb = challenger.bundle_size / 1e6
        if gates.max_size_mb is None:
            pending.add(
                "gate", "size", True, f"bundle {size_mb:.2f} MB (no limit set)", {"mb": size_mb}
            )
        else:
            ok = size_mb <= gates.max_size_mb
            if not ok:
                failed.append("size")
            pending.add(
                "gate",
                "size",
                ok,
                f"bundle {size_mb:.2f} MB ({'<=' if ok else '>'} {gates.max_size_mb} MB)",
                {"mb": size_mb, "limit": gates.max_size_mb},
            )
        if gates.fairness is not None:
            ok, summary, detail = self._fairness(assembled, rows, target, champion, new)
            if not ok:
                failed.append("fairness")
            pending.add("gate", "fairness", ok, summary, detail)
        passed = not failed
        if not passed:
            if challenger.status.value == "active":
                change_status(
                    self.ctx,
                    self.model,
                    version,
                    "archived",
                    reason=f"loop cycle {state['cycle']}: failed gates {', '.join(failed)}",
                )
            self._event(f"cycle {state['cycle']}: v{version} failed {', '.join(failed)}; archived")
            new_state = self._end_cycle(
                state, last_retrain_ms=self._clock(), trained_until_ms=state.get("trained_until_ms")
            )
            return {"passed": False, "failed": failed}, new_state
        return {"passed": True, "failed": []}, state

    def _fairness(
        self,
        assembled: dict[str, Any],
        rows: pd.DataFrame,
        target: str,
        champion: ModelVersionRecord,
        new: Any,
    ) -> tuple[bool, str, dict[str, Any]]:
        from forgeml import data as datasets

        limit = self.policy.gates.fairness
        assert limit is not None
        sensitive = [
            c
            for c in datasets.get(assembled["eval_dataset"], workspace=self.ws).sensitive
            if c in rows.columns
        ]
        if not sensitive:
            return (
                True,
                f"no sensitive columns recorded on {assembled['eval_dataset']}: nothing to audit",
                {},
            )
        spec = resolve_metric(self._metric_name(champion), champion.task)
        old = self._load(champion.version)
        X = rows.drop(columns=[target])
        outs = {"champion": model_outputs(old, X), "challenger": model_outputs(new, X)}
        y = rows[target].to_numpy()
        detail: dict[str, Any] = {}
        worst = ("", -np.inf)
        for column in sensitive:
            groups = rows[column].astype(str).to_numpy()
            gaps = {}
            for who, out in outs.items():
                values = []
                for g in np.unique(groups):
                    mask = groups == g
                    if mask.sum() >= 20:
                        part = Outputs(
                            out.predictions[mask],
                            None if out.proba is None else out.proba[mask],
                            out.classes,
                        )
                        values.append(metric_value(spec, y[mask], part))
                gaps[who] = float(max(values) - min(values)) if len(values) >= 2 else 0.0
            increase = gaps["challenger"] - gaps["champion"]
            detail[column] = {**gaps, "increase": increase}
            if increase > worst[1]:
                worst = (column, increase)
        ok = worst[1] <= limit.max_disparity_increase
        column = worst[0]
        return (
            ok,
            f"largest {spec.name} gap between groups of {column!r}: challenger "
            f"{detail[column]['challenger']:.4f} vs champion {detail[column]['champion']:.4f} "
            f"(increase {worst[1]:+.4f}, at most {limit.max_disparity_increase}; groups of 20+ "
            f"rows of {assembled['eval_dataset']})",
            detail,
        )

    # rollout --------------------------------------------------------------------------------

    def _rollout(
        self, state: dict[str, Any], trained: dict[str, Any], pending: _Pending
    ) -> tuple[dict, dict]:
        rollout = self.policy.rollout
        version = int(trained["version"])
        champion_alias = self.policy.champion
        cycle = int(state["cycle"])
        now = self._clock()
        until = trained.get("trained_until_ms")
        if until is None:
            until = self._cycle_output(cycle, "assemble").get("trained_until_ms")
        if rollout.mode == "direct":
            promote(
                self.ctx,
                self.model,
                version,
                alias=champion_alias,
                reason=f"loop cycle {cycle}: passed every gate (direct rollout)",
            )
            pending.add(
                "promote",
                "direct",
                True,
                f"v{version} is {self.model}@{champion_alias} (direct rollout: no live window)",
                {"version": version},
            )
            self._event(f"cycle {cycle}: promoted v{version} to @{champion_alias}")
            return {"mode": "direct", "version": version}, self._promoted_state(
                state, version, now, until
            )
        promote(
            self.ctx,
            self.model,
            version,
            alias=CANDIDATE,
            reason=f"loop cycle {cycle}: passed every gate; {rollout.mode} rollout",
        )
        if rollout.mode == "canary":
            route: dict[str, Any] = {
                "split": {champion_alias: 100 - rollout.share, CANDIDATE: rollout.share}
            }
        else:
            route = {
                "split": {champion_alias: 100},
                "shadow": {"version": CANDIDATE, "fraction": rollout.share / 100},
            }
        change = set_route(self.ctx, self.model, route)
        pending.add(
            "rollout",
            rollout.mode,
            True,
            f"v{version} is @{CANDIDATE}, {rollout.mode} at {rollout.share:g}% of requests "
            f"(route revision {change.revision}); promoted after {rollout.min_requests:,} "
            f"requests, {rollout.min_labelled:,} labelled rows and {rollout.window_minutes:g} "
            "min unless worse",
            {"version": version, "route": route, "revision": change.revision},
        )
        self._event(f"cycle {cycle}: v{version} in {rollout.mode} rollout at {rollout.share:g}%")
        return {"mode": rollout.mode, "version": version, "route": route}, {
            **state,
            "phase": "rollout",
            "rollout": {
                "version": version,
                "champion_version": int(state["champion_version"]),
                "started_ms": now,
                "mode": rollout.mode,
                "trained_until_ms": until,
            },
        }

    def _cycle_output(self, cycle: int, kind: str) -> dict[str, Any]:
        step = self.ws.loop.step(self.model, f"cycle-{cycle}/{kind}")
        return dict(step.output or {}) if step is not None else {}

    def _promoted_state(
        self, state: dict[str, Any], version: int, now: int, until: int | None
    ) -> dict[str, Any]:
        return {
            **state,
            "phase": "idle",
            "champion_version": version,
            "baseline": self._chosen_baseline(int(state["cycle"]), now),
            "last_retrain_ms": now,
            "trained_until_ms": until,
            "rollout": None,
        }

    def _chosen_baseline(self, cycle: int, now: int) -> dict[str, Any] | None:
        """The performance trigger's baseline for a champion this cycle chose: what it scored
        on the comparison window (rows it had not trained on), so the trigger measures decay
        from the first labelled window it answers instead of waiting for a baseline window.
        None (the first live window decides) for an estimated trigger or another metric."""
        perf = self.policy.triggers.performance
        compared = self._cycle_output(cycle, "compare")
        value = compared.get("challenger")
        if perf is None or perf.estimated or value is None or not np.isfinite(value):
            return None
        if perf.metric is not None and perf.metric != compared.get("metric"):
            return None
        eval_set = self._cycle_output(cycle, "assemble").get("eval_dataset")
        return {
            "value": float(value),
            "rows": int(compared.get("rows") or 0),
            "metric": compared.get("metric"),
            "until_ms": int(now),
            "on": f"the comparison window that chose it ({eval_set})",
        }

    def _live(self, version: int, role: str, since_ms: int, spec: Any) -> dict[str, Any]:
        """A version's requests, errors, mean latency and live metric since ``since_ms`` (with
        its labels ``y`` and logged ``outputs`` for the interval)."""
        stats = self.ws.predlog.window_stats(
            self.model, every_ms=_WHOLE, version=version, since_ms=since_ms, role=role
        )
        requests = sum(s.requests for s in stats)
        errors = sum(s.errors for s in stats)
        rows = self._log(version=version, role=role, since_ms=since_ms)
        labelled = self._labelled(rows)
        loaded = self._load(version)
        outputs = logged_outputs(labelled, loaded.classes)
        y = labelled["label"].to_numpy()
        metric = metric_value(spec, y, outputs) if len(labelled) else float("nan")
        return {
            "y": y,
            "outputs": outputs,
            "requests": requests,
            "errors": errors,
            "error_rate": errors / requests if requests else 0.0,
            # the median request: one slow request (a cold start, a pause of the machine)
            # does not decide a rollback on its own
            "latency_ms": (
                float(rows.drop_duplicates("request_id")["latency_ms"].median())
                if len(rows)
                else float("nan")
            ),
            "labelled": len(labelled),
            "metric": metric,
        }

    def _observe(self, state: dict[str, Any]) -> dict[str, Any]:
        policy = self.policy.rollout
        info = dict(state["rollout"])
        cycle = int(state["cycle"])
        version, champ = int(info["version"]), int(info["champion_version"])
        champion = self.ws.models.get_version(self.model, champ)
        spec = resolve_metric(self._metric_name(champion), champion.task)
        since = int(info["started_ms"])
        cand_role = "shadow" if info["mode"] == "shadow" else "primary"
        cand = self._live(version, cand_role, since, spec)
        base = self._live(champ, "primary", since, spec)
        rules = policy.rollback
        worse: list[str] = []
        if cand["requests"] >= policy.min_requests:
            if cand["error_rate"] - base["error_rate"] > rules.max_error_rate_increase:
                worse.append(
                    f"error rate {cand['error_rate']:.2%} vs {base['error_rate']:.2%} "
                    f"(more than +{rules.max_error_rate_increase:.2%})"
                )
            if (
                np.isfinite(base["latency_ms"])
                and base["latency_ms"] > 0
                and cand["latency_ms"] / base["latency_ms"] > rules.max_latency_ratio
                and cand["latency_ms"] - base["latency_ms"] > rules.min_latency_increase_ms
            ):
                worse.append(
                    f"median latency {cand['latency_ms']:.2f} ms vs {base['latency_ms']:.2f} ms "
                    f"(more than {rules.max_latency_ratio:g}x and "
                    f"+{rules.min_latency_increase_ms:g} ms)"
                )
        enough_labels = (
            cand["labelled"] >= policy.min_labelled and base["labelled"] >= policy.min_labelled
        )
        live = None
        if enough_labels:
            live = independent_lead(
                spec,
                base.pop("y"),
                base.pop("outputs"),
                cand.pop("y"),
                cand.pop("outputs"),
                seed=self.policy.seed + cycle,
            )
            # worse by more than the allowed drop, and worse beyond the interval's doubt
            if -live.lead > rules.max_metric_drop and live.upper < 0:
                worse.append(
                    f"live {spec.name} {live.challenger:.4f} on {cand['labelled']:,} labelled "
                    f"rows vs champion {live.champion:.4f} on {base['labelled']:,}: lead "
                    f"{live.lead:+.4f}, 95% interval [{live.lower:+.4f}, {live.upper:+.4f}] "
                    f"(worse than -{rules.max_metric_drop} and below 0)"
                )
        for side in (cand, base):
            side.pop("y", None)
            side.pop("outputs", None)
        detail = {
            "candidate": cand,
            "champion": base,
            "version": version,
            "champion_v": champ,
            "live_lead": live.to_dict() if live is not None else None,
        }
        elapsed_min = (self._clock() - since) / 60_000
        measured = (
            f"candidate v{version}: {cand['requests']:,} requests, {cand['labelled']:,} labelled, "
            f"{spec.name} {cand['metric']:.4f}, errors {cand['error_rate']:.2%}, "
            f"{cand['latency_ms']:.2f} ms; champion v{champ}: {base['requests']:,} requests, "
            f"{base['labelled']:,} labelled, {spec.name} {base['metric']:.4f}, errors "
            f"{base['error_rate']:.2%}, {base['latency_ms']:.2f} ms; {elapsed_min:.1f} min in "
            "rollout"
        )
        if worse:
            return self._rollback(state, version, "; ".join(worse) + f" ({measured})", detail)
        ready = (
            cand["requests"] >= policy.min_requests
            and enough_labels
            and elapsed_min >= policy.window_minutes
        )
        if not ready:
            self._event(f"cycle {cycle}: rollout of v{version} continues ({measured})")
            return state
        return self._promote(state, version, measured, detail)

    def _rollback(
        self, state: dict[str, Any], version: int, why: str, detail: dict[str, Any]
    ) -> dict[str, Any]:
        cycle = int(state["cycle"])

        def work(pending: _Pending) -> tuple[dict, dict]:
            with self.ws.unit_of_work():
                self._clear_route()
                self._drop_candidate(f"loop cycle {cycle}: rolled back")
            record = self.ws.models.get_version(self.model, version)
            if record.status.value == "active":
                change_status(
                    self.ctx, self.model, version, "archived", reason=f"loop cycle {cycle}: {why}"
                )
            pending.add("rollback", "live", True, f"v{version} rolled back: {why}", detail)
            return {"version": version, "why": why}, self._end_cycle(
                state, rollout=None, last_retrain_ms=self._clock()
            )

        _, state = self._step(state, "rollback", work)
        self._event(f"cycle {cycle}: rolled back v{version}")
        return state

    def _promote(
        self, state: dict[str, Any], version: int, measured: str, detail: dict[str, Any]
    ) -> dict[str, Any]:
        cycle = int(state["cycle"])
        info = dict(state["rollout"])

        def work(pending: _Pending) -> tuple[dict, dict]:
            with self.ws.unit_of_work():
                promote(
                    self.ctx,
                    self.model,
                    version,
                    alias=self.policy.champion,
                    reason=f"loop cycle {cycle}: the live comparison held",
                )
                self._clear_route()
                self._drop_candidate(f"loop cycle {cycle}: promoted")
            pending.add(
                "promote",
                "live",
                True,
                f"v{version} is {self.model}@{self.policy.champion}: {measured}",
                detail,
            )
            return {"version": version}, self._promoted_state(
                state, version, self._clock(), info.get("trained_until_ms")
            )

        _, state = self._step(state, "promote", work)
        self._event(f"cycle {cycle}: promoted v{version} to @{self.policy.champion}")
        return state

    def _clear_route(self) -> None:
        with suppress(NotFoundError):  # no route left (a step run again after a crash)
            clear_route(self.ctx, self.model)

    def _drop_candidate(self, reason: str) -> None:
        with suppress(NotFoundError, ConflictError):  # removed before a crash
            remove_alias(self.ctx, self.model, CANDIDATE, reason=reason)
