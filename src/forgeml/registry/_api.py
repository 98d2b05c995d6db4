"""The registry's Python API: register, load, promote, retire, compare, lineage, cards."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import ArtifactIntegrityError, ConflictError, InputError, NotFoundError
from forgeml.refs import parse_ref, parse_version
from forgeml.registry._bundle import CARD, PROFILE, REFERENCE, read_bundle, stage
from forgeml.registry._card import card_html, render_card
from forgeml.registry._flavors import classes_of, flavor_for, is_classifier, task_of
from forgeml.registry._predictor import LoadedModel
from forgeml.registry._signature import (
    Signature,
    infer_signature,
    names_only_signature,
    signature_from_columns,
)
from forgeml.security import PiiKey, PiiPolicy, Principal, actor_name, apply_pii, pii_key
from forgeml.store import (
    ModelEvent,
    ModelRecord,
    ModelStatus,
    ModelVersionRecord,
    Workspace,
    now_ms,
)
from forgeml.store._registry import check_model_name

__all__ = [
    "ModelVersion",
    "alias_at",
    "archive",
    "card",
    "compare",
    "get_model",
    "get_version",
    "history",
    "lineage",
    "list_models",
    "list_versions",
    "load",
    "models_trained_on",
    "parse_model_ref",
    "promote",
    "reference",
    "register",
    "remove_alias",
    "restore",
    "retire",
    "set_threshold",
]

ModelVersion = ModelVersionRecord
_CHECK_ROWS = 200


def _ws(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from forgeml.tracking import default_workspace

    return default_workspace()


def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split ``NAME@VERSION``, ``NAME@ALIAS`` or ``NAME@latest`` (``NAME`` alone: latest).

    Raises:
        InputError: ``ref`` is not of that form.
    """
    parsed = parse_ref(ref, kind="model")
    return parsed.name, parsed.selector


# -- register ---------------------------------------------------------------------------------


def _metrics(value: Any) -> dict[str, dict[str, float | None]]:
    """Metrics as ``{name: {"value", "lower", "upper"}}`` from a mapping of numbers, of
    metric values, or an evaluation's ``Metrics``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) and hasattr(value, "to_dict"):
        value = value.to_dict()
        value = value.get("metrics", value) if isinstance(value, Mapping) else {}
    if not isinstance(value, Mapping):
        raise InputError(f"metrics must be a mapping of name -> value; got {type(value).__name__}")
    out: dict[str, dict[str, float | None]] = {}
    for name, item in value.items():
        if hasattr(item, "value"):
            item = {
                "value": item.value,
                "lower": getattr(item, "lower", None),
                "upper": getattr(item, "upper", None),
            }
        if isinstance(item, Mapping):
            entry = {k: _finite(item.get(k)) for k in ("value", "lower", "upper")}
        else:
            entry = {"value": _finite(item), "lower": None, "upper": None}
        if entry["value"] is None and not isinstance(item, Mapping):
            raise InputError(f"The metric {name!r} must be a number; got {item!r}")
        out[str(name)] = entry
    return out


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _dataset_frame(
    ws: Workspace, dataset: str
) -> tuple[str, pd.DataFrame, str | None, dict[str, Any] | None, PiiPolicy]:
    """(exact ``NAME@V``, its table, its target column, its profile, its PII policy) of a
    dataset version."""
    import forgeml.data as fd

    version = fd.get(dataset, workspace=ws)
    frame = fd.load(version, workspace=ws)
    profile = None if version.profile is None else version.profile.to_dict()
    return f"{version.name}@{version.version}", frame, version.target, profile, version.pii


def _input_columns(model: Any, frame: pd.DataFrame | None, declared: Any) -> list[str] | None:
    names_in = getattr(model, "feature_names_in_", None)
    if declared is not None:
        return [str(c) for c in declared]
    if names_in is not None:
        return [str(c) for c in names_in]
    return None if frame is None else [str(c) for c in frame.columns]


def register(
    obj: Any,
    *,
    name: str,
    sample: pd.DataFrame | None = None,
    task: str | None = None,
    metrics: Any = None,
    run_id: str | None = None,
    dataset: str | None = None,
    description: str | None = None,
    evaluation: Any = None,
    signature: Signature | None = None,
    threshold: float | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
    pii: Mapping[str, str] | None = None,
    pii_default: str = "hash",
) -> ModelVersionRecord:
    """Register a model as the next version of ``name``.

    Args:
        obj: a training result (anything with ``.model`` and ``.run_id``) or a fitted
            scikit-learn estimator or pipeline, LightGBM's and XGBoost's wrappers included.
        name: the model's name (letters, digits, ``.``, ``_``, ``-``).
        sample: input rows the model takes (training data or a sample of it): the signature
            and the drift baseline come from it. Default: the training dataset's table, or
            the estimator's ``feature_names_in_`` (names only).
        task: ``binary``, ``multiclass``, ``regression``... (default: from the model).
        metrics: evaluation metrics: ``{name: value}``, ``{name: MetricValue}`` or an
            evaluation's ``Metrics`` (intervals are kept).
        run_id: the training run (default: the training result's).
        dataset: the training dataset version, ``NAME@VERSION``.
        description: what the model is for.
        evaluation: an evaluation report or model card of ``forgeml.evaluate``, rendered
            into the bundle's card.
        signature: the input signature, when there is neither a sample nor a dataset (its
            task and classes are taken from the model).
        threshold: a binary classifier's decision threshold on the positive class's
            probability (default: the one a forgeml training tuned, else none: the most
            probable class).
        workspace: where to register (default: the default workspace).
        actor: who registers it (default: the local user of the workspace's settings).
        pii: the PII policy's declared part for the model's input columns (column ->
            ``hash``, ``mask`` or ``keep``) when neither a dataset nor a training result
            carries one: other input columns named like personal data or whose sample values
            are mostly e-mail addresses, phone, card or social security numbers are hashed
            too (``pii_default``). The sample is stored, and served requests are predicted
            and logged, under the policy: the model receives those columns hashed or masked,
            so fit it on ``forgeml.security.apply_pii``'s table (or declare ``keep``): a
            model that fails on the replaced values, or whose answers on the raw sample
            differ from those on the replaced one while it reads the replaced values as
            unseen, is refused, naming the columns. A dataset's or a training result's
            policy applies to the sample as well.
        pii_default: the action for detected PII input columns (``keep`` turns detection off).

    Returns:
        The new version (``.name``, ``.version``).

    Raises:
        InputError: the model is not fitted, no signature can be inferred, or an argument
            is invalid.
        NotFoundError: the run or dataset does not exist.
    """
    ws = _ws(workspace)
    who = actor_name(actor, ws.settings)
    check_model_name(name)
    model, declared, summary, tuned_for, split = obj, None, None, None, None
    carried: PiiPolicy | None = None
    kinds: Mapping[str, Any] = {}
    if hasattr(obj, "model") and hasattr(obj, "run_id"):  # a training result
        model = obj.model
        tuned_for = getattr(obj, "threshold_metric", None) or getattr(obj, "metric", None)
        run_id = run_id or obj.run_id
        task = task or getattr(obj, "task", None)
        metrics = metrics if metrics is not None else getattr(obj, "test_metrics", None)
        declared = getattr(obj, "feature_columns", None)
        kinds = getattr(obj, "column_kinds", None) or {}
        if declared is not None:  # identifiers are not model inputs: not asked for at serving
            declared = [c for c in declared if kinds.get(c) != "identifier"]
        summary = getattr(obj, "input_schema", None)
        found = getattr(obj, "dataset", None)
        if dataset is None and found is not None:
            dataset = found if isinstance(found, str) else getattr(found, "ref", None)
        evaluation = evaluation if evaluation is not None else getattr(obj, "evaluation", None)
        split = getattr(obj, "split", None)
        carried = getattr(obj, "pii", None)
    flavor = flavor_for(model)
    classifier = is_classifier(model)
    task = task or task_of(model)
    classes = list(classes_of(model)) if classifier else None

    code_revision = None
    if run_id is not None:
        run = ws.runs.get_run(run_id)
        run_id, code_revision = run.run_id, run.code_revision
        if dataset is None and isinstance(run.params.get("dataset"), str):
            dataset = run.params["dataset"]
        if split is None and isinstance(run.params.get("split"), str):
            split = run.params["split"]

    frame, target, profile, source = None, None, None, "sample"
    policy = carried if isinstance(carried, PiiPolicy) else None  # the training decided
    if dataset is not None:
        dataset, data, target, profile, stored_policy = _dataset_frame(ws, dataset)
        policy = stored_policy if policy is None or not policy.rules else policy
        if sample is None:
            frame, source = data, "dataset"
    if sample is not None:
        if not isinstance(sample, pd.DataFrame):
            raise InputError(f"sample must be a pandas DataFrame; got {type(sample).__name__}")
        frame = sample
    if pii and (policy is not None or dataset is not None):
        raise InputError(
            "pii= applies to a model registered from a sample; this model's "
            f"{'dataset' if dataset is not None else 'training'} carries its PII policy"
        )
    columns = _input_columns(model, frame, declared)
    if frame is not None and declared is None and getattr(model, "feature_names_in_", None) is None:
        columns = [c for c in columns or [] if c != target]
    if policy is None and columns:
        # no dataset or training carries a policy: the dataset path's, detected on the
        # sample's input columns (by name alone when there are no rows)
        inputs_only = (
            frame.loc[:, [c for c in columns if c in frame.columns]]
            if frame is not None
            else pd.DataFrame(columns=columns)
        )
        policy = _detected(inputs_only, ws, pii, pii_default)
    if frame is not None and source == "sample" and policy is not None and policy.changed:
        raw_frame = frame
        frame, _ = apply_pii(frame, ws.settings, policy=policy)
        _check_model_takes(model, raw_frame, frame, columns, policy)
    if signature is None and frame is None and columns and isinstance(summary, Mapping):
        signature = signature_from_columns(summary, columns, task=task, classes=classes)
    if signature is not None and frame is None:
        signature = replace(
            signature, task=task, classes=None if classes is None else tuple(classes)
        )
        reference = check = None
    elif frame is not None and columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"The sample lacks columns the model takes: {', '.join(missing)}")
        inputs = frame.loc[:, columns]
        signature = infer_signature(inputs, task=task, classes=classes, source=source)
        reference = frame.loc[:, [*columns, target]] if target in frame.columns else inputs
        check = inputs.head(_CHECK_ROWS)
        if profile is None:
            profile = _profile(inputs)
    elif columns:
        signature = names_only_signature(columns, task=task, classes=classes)
        reference = check = None
    else:
        raise InputError(
            "Cannot tell which columns the model takes: pass sample= (training rows) or "
            "dataset=, or fit the model on a DataFrame"
        )

    # The training data's other columns (target, identifiers, sensitive, dropped) are left
    # out on purpose: rows that carry them are scored without a warning.
    seen = [str(c) for c in frame.columns] if frame is not None else [str(c) for c in kinds]
    taken = set(signature.names)
    signature = replace(signature, ignored=tuple(c for c in seen if c not in taken))
    decision = _decision(model, task, classes, threshold, tuned_for)
    metric_values = _metrics(metrics)
    evaluation_md = _evaluation_markdown(evaluation)
    manifest = {
        "task": task,
        "signature": signature.to_dict(),
        "metrics": metric_values,
        "lineage": {
            "run_id": run_id,
            "dataset": dataset,
            "split": split,
            "code_revision": code_revision,
        },
        "description": description,
        "created_by": who,
        "created_at": now_ms(),
    }
    if decision is not None:
        manifest["decision"] = decision
    if policy is not None and policy.rules:
        # the model was trained on the data as stored (a dataset) or as training saw it (a
        # table): its PII columns hashed or masked; the sample was stored so too
        manifest["pii"] = policy.to_dict()
    staged = stage(
        model,
        flavor,
        manifest=manifest,
        reference=reference,
        profile=profile,
        check=check,
        render_card=lambda m: render_card(m, evaluation_md),
    )
    try:
        return ws.models.add_version(
            name,
            flavor=flavor.name,
            bundle=lambda version: staged.finish(name, version, ws.artifacts),
            task=task,
            metrics={k: v["value"] for k, v in metric_values.items() if v["value"] is not None},
            run_id=run_id,
            dataset=dataset,
            description=description,
            created_by=who,
        )
    finally:
        staged.cleanup()


def _detected(
    inputs: pd.DataFrame, ws: Workspace, pii: Mapping[str, str] | None, default: str
) -> PiiPolicy:
    """The PII policy of a sample's input columns (declared, then detected)."""
    from forgeml.security import PiiPolicy, detect_pii

    rules = detect_pii(inputs, declared=pii, default=default)
    key = pii_key(ws.settings) if any(r.action == "hash" for r in rules.values()) else None
    return PiiPolicy(rules, None if key is None else key.id)


def _check_model_takes(
    model: Any,
    raw: pd.DataFrame,
    frame: pd.DataFrame,
    columns: list[str] | None,
    policy: PiiPolicy,
) -> None:
    """Refuse, naming the columns, a model fitted on raw values of input columns the PII
    policy replaces: it fails on the replaced values, or it answers differently on the raw
    sample and reads the replaced values as unseen ones.

    One column at a time, from the sample as the policy leaves it (``frame``): its raw values
    put back change the answers, while values no model has seen (hashes under another key)
    in their place do not. A model whose answers do not change reads the column as it will
    be served (or not at all) and is accepted; so is one that fails on the raw values.
    """
    changed = [c for c in columns or [] if c in policy.changed]
    if not changed or not hasattr(model, "predict") or not columns:
        return
    replaced = frame.loc[:, columns].head(_CHECK_ROWS)

    def shown(names: list[str]) -> str:
        return ", ".join(f"{c} ({policy.rules[c].action}: {policy.rules[c].reason})" for c in names)

    try:
        baseline = _answers(model, replaced)
    except Exception as e:
        raise InputError(
            f"The PII policy replaces input columns the model takes: {shown(changed)}; the "
            f"model fails on the replaced values ({type(e).__name__}): fit it on the table "
            "forgeml.security.apply_pii returns, or declare pii={column: 'keep'}"
        ) from None
    probe_key = PiiKey(b"forgeml.pii.unseen-values-probe")
    raw_rows = raw.loc[replaced.index]
    read_raw = []
    for column in changed:
        with_raw = replaced.copy()
        with_raw[column] = raw_rows[column].to_numpy()
        try:
            answers = _answers(model, with_raw)
        except Exception:
            continue  # it cannot take the raw values: fitted on the replaced ones
        if _same(answers, baseline):
            continue  # the column does not change its answers on the sample
        unseen = replaced.copy()
        unseen[column] = [probe_key.hash(v) for v in raw_rows[column].tolist()]
        try:
            probed: Any = _answers(model, unseen)
        except Exception:
            probed = None
        if probed is None or _same(probed, baseline):
            read_raw.append(column)  # the replaced values read as unseen ones
    if read_raw:
        raise InputError(
            f"The PII policy replaces input columns the model reads raw values of: "
            f"{shown(read_raw)}; its answers on the sample change when the policy is applied "
            "(it reads the replaced values as unseen ones), so served requests would be "
            "answered wrongly: fit it on the table forgeml.security.apply_pii returns, or "
            "declare pii={column: 'keep'}"
        )


def _answers(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Class probabilities where the model gives them (finer than labels), else predictions."""
    proba = getattr(model, "predict_proba", None)
    if proba is not None:
        try:
            return np.asarray(proba(X))
        except Exception:  # a classifier without probabilities, or a regressor's stub
            pass
    return np.asarray(model.predict(X))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(a, b))


def check_threshold(threshold: Any) -> float:
    """A decision threshold as a float in [0, 1].

    Raises:
        InputError: it is not a number between 0 and 1.
    """
    value = _finite(threshold)
    if value is None or not 0.0 <= value <= 1.0:
        raise InputError(
            f"The threshold must be a number between 0 and 1 (a probability); got {threshold!r}"
        )
    return value


def _decision(
    model: Any,
    task: str | None,
    classes: list[Any] | None,
    threshold: float | None,
    tuned_for: str | None,
) -> dict[str, Any] | None:
    """The manifest's ``decision`` section: the binary decision threshold and where it came
    from (``None``: the most probable class)."""
    binary = classes is not None and len(classes) == 2 and task == "binary"
    if threshold is not None:
        if not binary:
            raise InputError(
                f"A decision threshold needs a binary classifier; this model is {task or 'not one'}"
            )
        return {"threshold": check_threshold(threshold), "source": "given at registration"}
    own = getattr(model, "threshold", None)
    if (
        binary
        and type(model).__module__.startswith("forgeml.")
        and isinstance(own, int | float)
        and not isinstance(own, bool)
    ):
        metric = getattr(model, "threshold_metric", None) or tuned_for
        return {
            "threshold": check_threshold(own),
            "source": "tuned on out-of-fold predictions of the training rows",
            "metric": metric,
        }
    return None


def set_threshold(
    ref: str,
    threshold: float | str,
    *,
    reason: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelVersionRecord:
    """Register a copy of a binary classifier's version with another decision threshold.

    A bundle never changes once registered (it is content-addressed and its predictions are
    what was promoted), so the new threshold is a new version: the same model file (stored
    once), the same lineage, signature and metrics, a manifest whose ``decision`` names the
    version it came from. Promote it like any other version.

    Args:
        ref: the version to start from (``NAME@VERSION|ALIAS``).
        threshold: the positive class is predicted when its probability is at least this
            (a number, or its text as a command line gives it).
        reason: why (kept in the manifest and the model card).
        workspace: where the model is registered.
        actor: who sets it (default: the local user of the workspace's settings).

    Returns:
        The new version.

    Raises:
        InputError: the threshold is not in [0, 1] or the model is not a binary classifier.
        NotFoundError: no such version.
    """
    import tempfile
    from pathlib import Path

    from forgeml.registry._bundle import MANIFEST, StagedBundle
    from forgeml.registry._flavors import FLAVORS

    ws = _ws(workspace)
    value = check_threshold(threshold)
    record = get_version(ref, workspace=ws)
    bundle = read_bundle(ws.artifacts, record.bundle_digest)
    old = bundle.manifest
    classes = (old.get("signature") or {}).get("output", {}).get("classes")
    if old.get("task") != "binary" or classes is None or len(classes) != 2:
        raise InputError(
            f"{record.ref} is a {old.get('task') or 'model without a task'}; a decision "
            "threshold applies to binary classifiers"
        )
    previous = (old.get("decision") or {}).get("threshold")
    manifest = {k: v for k, v in old.items() if k not in ("name", "version", "files")}
    manifest.update(
        decision={
            "threshold": value,
            "source": f"set from {record.ref}",
            "derived_from": record.ref,
            "previous_threshold": previous,
            "reason": reason,
        },
        created_by=actor_name(actor, ws.settings),
        created_at=now_ms(),
    )
    text = bundle.read_bytes(CARD).decode("utf-8")
    _, marker, evaluation_md = text.partition("\n## Evaluation\n\n")
    folder = Path(tempfile.mkdtemp(prefix="forgeml-bundle-"))
    staged = StagedBundle(
        folder,
        FLAVORS[old["flavor"]],
        manifest,
        lambda m: render_card(m, evaluation_md.strip() if marker else None),
    )
    try:
        for path, entry in bundle.entries.items():
            if path not in (MANIFEST, CARD):
                ws.artifacts.get_file(entry.digest, folder / path)
        description = getattr(record, "description", None) or old.get("description")
        return ws.models.add_version(
            record.name,
            flavor=old["flavor"],
            bundle=lambda version: staged.finish(record.name, version, ws.artifacts),
            task=old.get("task"),
            metrics=dict(record.metrics),
            run_id=record.run_id,
            dataset=record.dataset,
            description=description,
            created_by=actor_name(actor, ws.settings),
        )
    finally:
        staged.cleanup()


def _profile(frame: pd.DataFrame) -> dict[str, Any] | None:
    try:
        from forgeml.data import profile
    except ImportError:
        return None
    return dict(profile(frame).to_dict())


def _evaluation_markdown(evaluation: Any) -> str | None:
    if evaluation is None:
        return None
    if isinstance(evaluation, str):
        return evaluation
    if hasattr(evaluation, "to_markdown"):
        return str(evaluation.to_markdown())
    try:
        from forgeml.evaluate import model_card  # type: ignore[attr-defined]
    except ImportError:
        raise InputError("evaluation must be a model card (with to_markdown) or text") from None
    return str(model_card(evaluation).to_markdown())


# -- load -------------------------------------------------------------------------------------


def load(
    ref: str,
    *,
    workspace: Workspace | None = None,
    for_serving: bool = False,
    unknown_categories: str = "error",
    trust_pickle: bool = False,
) -> LoadedModel:
    """Load a model version after verifying every file of its bundle.

    Args:
        ref: ``NAME@VERSION``, ``NAME@ALIAS`` or ``NAME@latest`` (the newest active version).
        workspace: where to load from (default: the default workspace).
        for_serving: refuse a retired version.
        unknown_categories: ``"error"`` refuses input categories never seen in training;
            ``"pass"`` gives them to the model (its encoder decides) with a warning.
        trust_pickle: load a model stored with joblib (pickle), which runs code when it is
            loaded; refused without it (and logged with it).

    Returns:
        The loaded model: ``predict``, ``predict_proba``, ``explain``, ``signature``,
        ``metadata``.

    Raises:
        InputError: ``ref`` is malformed.
        UnsafeModelError: the model is a pickle and ``trust_pickle`` is false.
        NotFoundError: no such model, version or alias.
        ConflictError: ``for_serving`` and the version is retired.
        ArtifactIntegrityError: a file of the bundle does not match its digest.
    """
    ws = _ws(workspace)
    name, which = parse_model_ref(ref)
    record = ws.models.resolve(name, which)
    if for_serving and record.status is ModelStatus.RETIRED:
        raise ConflictError(f"{record.ref} is retired; a retired version cannot be served")
    bundle = read_bundle(ws.artifacts, record.bundle_digest)
    manifest = bundle.manifest
    if manifest.get("name") != record.name or manifest.get("version") != record.version:
        raise ArtifactIntegrityError(
            f"The bundle of {record.ref} describes {manifest.get('name')}@{manifest.get('version')}"
        )
    model = bundle.load_model(trust_pickle=trust_pickle)
    policy = PiiPolicy.from_dict(manifest.get("pii"))
    names = set(Signature.from_dict(manifest["signature"]).names)
    key = None
    if any(r.action == "hash" and c in names for c, r in policy.rules.items()):
        key = pii_key(ws.settings, create=False)
        if key is None:
            raise InputError(
                f"{record.ref} was trained on PII columns hashed with key {policy.key_id}; this "
                "workspace has no PII key (set FORGEML_PII_KEY or FORGEML_PII_KEY_FILE)"
            )
    return LoadedModel(record, bundle, model, unknown_categories=unknown_categories, pii_key=key)


# -- reading ----------------------------------------------------------------------------------


def reference(
    ref: str, *, workspace: Workspace | None = None
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The drift baseline of a version: its reference sample and its training data profile.

    Only the bundle's tree, ``reference.parquet`` and ``profile.json`` are read (each checked
    against its digest); the model file is neither read nor deserialized.

    Args:
        ref: ``NAME@VERSION``, ``NAME@ALIAS`` or ``NAME@latest``.
        workspace: the workspace; the default one when ``None``.

    Returns:
        The reference sample (training rows, at most 10,000, the target among them when it
        was registered with the model) and the profile document (``None`` when the version
        has none).

    Raises:
        InputError: ``ref`` is malformed.
        NotFoundError: no such model, version or alias, or the version was registered
            without sample rows and so has no reference sample.
        ArtifactIntegrityError: a file read does not match its digest.
    """
    import io

    import orjson

    ws = _ws(workspace)
    name, which = parse_model_ref(ref)
    record = ws.models.resolve(name, which)
    entries = {e.path: e for e in ws.artifacts.tree(record.bundle_digest)}
    if REFERENCE not in entries:
        raise NotFoundError(
            f"{record.ref} has no reference sample: it was registered without sample rows"
        )
    frame = pd.read_parquet(io.BytesIO(ws.artifacts.get_bytes(entries[REFERENCE].digest)))
    profile = None
    if PROFILE in entries:
        try:
            profile = orjson.loads(ws.artifacts.get_bytes(entries[PROFILE].digest))
        except orjson.JSONDecodeError:
            raise ArtifactIntegrityError(f"The profile of {record.ref} is not JSON") from None
    return frame, profile


def get_version(ref: str, *, workspace: Workspace | None = None) -> ModelVersionRecord:
    """The registry's record of ``NAME@VERSION|ALIAS|latest`` (nothing is loaded)."""
    name, which = parse_model_ref(ref)
    return _ws(workspace).models.resolve(name, which)


def get_model(name: str, *, workspace: Workspace | None = None) -> ModelRecord:
    """The model ``name`` with its aliases."""
    return _ws(workspace).models.get_model(name)


def list_models(*, workspace: Workspace | None = None) -> list[ModelRecord]:
    """Every registered model."""
    return _ws(workspace).models.list_models()


def list_versions(
    name: str, *, all_statuses: bool = False, workspace: Workspace | None = None
) -> list[ModelVersionRecord]:
    """Versions of ``name``, newest first: active ones, or every one with ``all_statuses=True``."""
    statuses = None if all_statuses else [ModelStatus.ACTIVE]
    return _ws(workspace).models.list_versions(name, statuses=statuses)


def history(
    name: str, *, alias: str | None = None, workspace: Workspace | None = None
) -> list[ModelEvent]:
    """Who changed what, when and why: registrations, alias moves, status changes."""
    return _ws(workspace).models.history(name, alias=alias)


def alias_at(
    name: str, alias: str, when: datetime | int, *, workspace: Workspace | None = None
) -> int | None:
    """The version ``NAME@ALIAS`` named at time ``when`` (a datetime or ms since the epoch)."""
    at = int(when.timestamp() * 1000) if isinstance(when, datetime) else int(when)
    return _ws(workspace).models.alias_at(name, alias, at)


# -- life cycle -------------------------------------------------------------------------------


def promote(
    name: str,
    version: int,
    *,
    alias: str = "production",
    reason: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelEvent:
    """Point ``NAME@ALIAS`` at ``version`` (atomically; recorded with who, when and why).

    ``actor`` is who moves it (default: the local user of the workspace's settings).

    Raises:
        InputError: invalid alias.
        NotFoundError: no such model or version.
        ConflictError: the version is retired.
    """
    ws = _ws(workspace)
    return ws.models.set_alias(
        name, alias, _version_number(version), actor=actor_name(actor, ws.settings), reason=reason
    )


def remove_alias(
    name: str,
    alias: str,
    *,
    reason: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelEvent:
    """Remove ``NAME@ALIAS`` (``actor``: who; default the settings' local user)."""
    ws = _ws(workspace)
    return ws.models.remove_alias(name, alias, actor=actor_name(actor, ws.settings), reason=reason)


def _set_status(
    name: str,
    version: int,
    status: ModelStatus,
    reason: str | None,
    ws: Workspace,
    actor: Principal | str | None,
) -> ModelVersionRecord:
    return ws.models.set_status(
        name, _version_number(version), status, actor=actor_name(actor, ws.settings), reason=reason
    )


def archive(
    name: str,
    version: int,
    *,
    reason: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelVersionRecord:
    """Archive a version: kept and loadable, hidden from default listings."""
    return _set_status(name, version, ModelStatus.ARCHIVED, reason, _ws(workspace), actor)


def restore(
    name: str,
    version: int,
    *,
    reason: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelVersionRecord:
    """Make an archived version active again."""
    return _set_status(name, version, ModelStatus.ACTIVE, reason, _ws(workspace), actor)


def retire(
    name: str,
    version: int,
    *,
    reason: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelVersionRecord:
    """Retire a version for good: it can no longer be served or promoted."""
    return _set_status(name, version, ModelStatus.RETIRED, reason, _ws(workspace), actor)


def _version_number(version: Any) -> int:
    return parse_version(version)


# -- lineage, compare, card -------------------------------------------------------------------


def models_trained_on(
    dataset: str, *, workspace: Workspace | None = None
) -> list[ModelVersionRecord]:
    """Every model version trained on the dataset version ``NAME@VERSION``."""
    ws = _ws(workspace)
    try:
        import forgeml.data as fd

        version = fd.get(dataset, workspace=ws)
        dataset = f"{version.name}@{version.version}"
    except (ImportError, NotFoundError):
        pass
    return ws.models.versions_trained_on(dataset)


def lineage(ref: str, *, workspace: Workspace | None = None) -> dict[str, Any]:
    """Version -> training run -> dataset version (and the recorded split it was trained and
    tested on) -> source, and the other models trained on that dataset version."""
    ws = _ws(workspace)
    record = get_version(ref, workspace=ws)
    bundle = read_bundle(ws.artifacts, record.bundle_digest)
    out: dict[str, Any] = {
        "model": record.to_dict(),
        "code_revision": bundle.manifest.get("lineage", {}).get("code_revision"),
        "split": bundle.manifest.get("lineage", {}).get("split"),
        "run": None,
        "dataset": None,
        "trained_on_same_dataset": [],
    }
    if record.run_id:
        try:
            run = ws.runs.get_run(record.run_id)
            out["run"] = {
                "run_id": run.run_id,
                "experiment": run.experiment,
                "name": run.name,
                "status": run.status.value,
                "user": run.user,
                "code_revision": run.code_revision,
                "params": run.params,
            }
        except NotFoundError:
            out["run"] = {"run_id": record.run_id, "missing": True}
    if record.dataset:
        dataset = parse_ref(record.dataset, kind="dataset", aliases=False)
        try:
            data = ws.datasets.get_version(dataset.name, dataset.version)
            out["dataset"] = {
                "ref": f"{data.name}@{data.version}",
                "digest": data.digest,
                "rows": data.n_rows,
                "columns": data.n_columns,
                "target": data.target,
                "source": data.source,
                "parent_version": data.parent_version,
                "created_by": data.created_by,
                "created_at": data.created_at,
            }
        except NotFoundError:
            out["dataset"] = {"ref": record.dataset, "missing": True}
        out["trained_on_same_dataset"] = [
            v.ref for v in ws.models.versions_trained_on(record.dataset) if v.ref != record.ref
        ]
    return out


def _latency_ms(model: LoadedModel, rows: pd.DataFrame | None) -> dict[str, float | None]:
    if rows is None or not len(rows):
        return {"single_row_ms": None, "batch_1000_rows_ms": None}
    columns = list(model.signature.names)
    one = rows.loc[:, columns].head(1)
    batch = rows.loc[:, columns].head(1000)
    model.predict(one)  # warm up
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        model.predict(one)
        timings.append(time.perf_counter() - start)
    start = time.perf_counter()
    model.predict(batch)
    per_batch = (time.perf_counter() - start) * 1000 * 1000 / len(batch)
    return {
        "single_row_ms": sorted(timings)[len(timings) // 2] * 1000,
        "batch_1000_rows_ms": per_batch,
    }


def compare(
    ref_a: str, ref_b: str, *, rows: pd.DataFrame | None = None, workspace: Workspace | None = None
) -> dict[str, Any]:
    """Two versions side by side: metrics with intervals, parameters, data, size, latency.

    Args:
        ref_a: the first version (``NAME@VERSION|ALIAS``).
        ref_b: the second.
        rows: rows to time predictions on (default: each bundle's reference sample).
        workspace: where to read from.
    """
    ws = _ws(workspace)
    sides = []
    for ref in (ref_a, ref_b):
        model = load(ref, workspace=ws)
        manifest = model.metadata
        params: dict[str, Any] = {}
        if model.record.run_id:
            try:
                params = ws.runs.get_run(model.record.run_id).params
            except NotFoundError:
                params = {}
        model_file = manifest["model"]["file"]
        sides.append(
            {
                "ref": model.record.ref,
                "asked_as": ref,
                "status": model.record.status.value,
                "flavor": manifest["flavor"],
                "estimator": manifest["model"].get("estimator"),
                "task": manifest.get("task"),
                "metrics": manifest.get("metrics", {}),
                "params": params,
                "dataset": model.record.dataset,
                "run_id": model.record.run_id,
                "inputs": len(model.signature.inputs),
                "bundle_bytes": model.record.bundle_size,
                "model_bytes": manifest["files"][model_file]["size"],
                "latency": _latency_ms(model, rows if rows is not None else model.reference()),
            }
        )
    names = sorted(set(sides[0]["metrics"]) | set(sides[1]["metrics"]))
    return {"a": sides[0], "b": sides[1], "metric_names": names}


def card(ref: str, *, html: bool = False, workspace: Workspace | None = None) -> str:
    """The model card of a version, as Markdown or a standalone HTML page."""
    ws = _ws(workspace)
    record = get_version(ref, workspace=ws)
    bundle = read_bundle(ws.artifacts, record.bundle_digest)
    text = bundle.read_bytes(CARD).decode("utf-8")
    return card_html(text, record.ref) if html else text
