"""Use case: evaluate a registered model on labelled data, saying which rows were scored.

A score means something only on rows the model was not fitted on. Every model trained from a
dataset version records the split it was trained and tested on (``holdout-...``), so this
use case knows, for any rows it scores, how many the model saw in training:

* on the training dataset version, by row position in the recorded split;
* on other data (a new version, another dataset), by row content: a row whose model inputs
  and label equal those of a training row counts as seen;
* for a model without that lineage (registered from an estimator), it is unknown, and the
  report says so.

By default the model's own held-out rows are scored (the test part of its recorded split),
which reproduces the training run's test score. Rows used in training are refused unless the
caller allows them, and then the report's header says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError, NotFoundError
from forgeml.workflows._context import Context, use_case

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ModelEvaluation", "ScoredRows", "evaluate_model"]

_PARTS = ("train", "validation", "test")


@dataclass(frozen=True, slots=True)
class ScoredRows:
    """Which rows an evaluation scored and how many of them the model was trained on.

    Attributes:
        dataset: the dataset version, ``NAME@V``.
        split: the recorded split the rows were taken from (``None``: every row).
        part: the part of that split (``train``, ``validation``, ``test``).
        n_rows: labelled rows scored.
        n_training_rows: how many of them the model was trained on (``None``: not known).
        matched_by: how training rows were recognised: ``split`` (row positions of the
            model's recorded split), ``content`` (equal inputs and label) or ``unknown``.
        allowed_training_rows: the caller allowed scoring training rows.
    """

    dataset: str
    split: str | None
    part: str | None
    n_rows: int
    n_training_rows: int | None
    matched_by: str
    allowed_training_rows: bool = False

    def describe(self) -> str:
        """One line for report headers and the command line."""
        where = self.dataset if self.split is None else f"{self.dataset} split {self.split}"
        if self.part is not None:
            where += f", part {self.part}"
        elif self.split is None:
            where += ", every labelled row"
        if self.n_training_rows is None:
            seen = "whether the model was trained on them is not recorded"
        elif self.n_training_rows == 0:
            seen = "none of them used in training"
        else:
            seen = f"{self.n_training_rows:,} of them used in training"
            if self.allowed_training_rows:
                seen += " (allowed by --allow-training-rows: scores on them are optimistic)"
        how = " (matched by row content)" if self.matched_by == "content" else ""
        return f"{where}: {self.n_rows:,} rows, {seen}{how}"

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "part": self.part,
            "n_rows": self.n_rows,
            "n_training_rows": self.n_training_rows,
            "matched_by": self.matched_by,
            "allowed_training_rows": self.allowed_training_rows,
            "description": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class ModelEvaluation:
    """An evaluation of a registered model.

    Attributes:
        model: ``NAME@VERSION``.
        run_id: the evaluation's run.
        rows: which rows were scored.
        report: the ``forgeml.evaluate`` report.
        classes: the model's classes (classification).
    """

    model: str
    run_id: str
    rows: ScoredRows
    report: Any
    classes: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the report's included)."""
        return {
            **self.report.to_dict(),
            "run_id": self.run_id,
            "model": self.model,
            "dataset": self.rows.dataset,
            "rows": self.rows.to_dict(),
        }


@use_case("evaluate")
def evaluate_model(
    ctx: Context,
    model_ref: str,
    data_ref: str,
    *,
    part: str | None = None,
    split: str | None = None,
    allow_training_rows: bool = False,
    sensitive: Sequence[str] | None = None,
    output_dir: str | Path | None = None,
    seed: int = 0,
    explain: bool = True,
    trust_pickle: bool = False,
) -> ModelEvaluation:
    """Evaluate a registered model on a labelled dataset version, as a run.

    Args:
        ctx: where and who (the run records the principal).
        model_ref: ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS`` (``NAME`` is its latest).
        data_ref: ``NAME`` or ``NAME@VERSION`` of a dataset with a target.
        part: score only this part (``train``, ``validation``, ``test``) of ``split``.
            Default: the test part of the model's own recorded split when ``data_ref`` is
            its training dataset version, else every labelled row.
        split: the recorded split ``part`` refers to (default: the model's own split on its
            training dataset version, else ``default``).
        allow_training_rows: score rows the model was trained on (the report says so).
        sensitive: sensitive columns to audit (default: the dataset's; numeric ones in the
            ranges recorded with the version).
        output_dir: also write the report files here.
        seed: seed of the bootstrap and SHAP.
        explain: compute SHAP importance (the slowest step on large models).
        trust_pickle: load a model stored with joblib (pickle runs code when loaded).

    Returns:
        The evaluation: its run, the rows scored and the report.

    Raises:
        InputError: the dataset has no target or lacks model inputs, an unknown part, no
            labelled row to score, or rows used in training without ``allow_training_rows``.
        NotFoundError: no such model, dataset, version or split.
    """
    import numpy as np

    from forgeml import data as datasets
    from forgeml.evaluate import evaluate as run_evaluation
    from forgeml.registry import load
    from forgeml.tracking import start_run

    ws = ctx.workspace
    if part is not None and part not in _PARTS:
        raise InputError(f"--part is one of {', '.join(_PARTS)}; got {part!r}")
    model = load(model_ref, workspace=ws, trust_pickle=trust_pickle)
    name = f"{model.name}@{model.version}"
    lineage = dict(model.metadata.get("lineage") or {})
    version = datasets.get(data_ref, workspace=ws)
    ref = version.ref
    if version.target is None:
        raise InputError(f"The dataset {ref} has no target column: add it with --target")
    frame = datasets.load(version, workspace=ws)
    columns = list(model.signature.names)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"The dataset {ref} lacks columns the model takes: {', '.join(missing)}")

    own_split = lineage.get("split") if lineage.get("dataset") == ref else None
    if part is None and split is None and own_split is not None:
        split, part = own_split, "test"
    elif split is not None and part is None:
        part = "test"
    elif part is not None and split is None:
        split = own_split or "default"
    chosen = np.ones(len(frame), dtype=bool)
    if split is not None and part is not None:
        _info, parts = datasets.split_parts(version, split, workspace=ws)
        chosen = parts == _PARTS.index(part)
    chosen &= frame[version.target].notna().to_numpy()
    if not chosen.any():
        where = ref if split is None else f"{ref} split {split} part {part}"
        raise InputError(f"No labelled row to score in {where}")

    trained, matched_by = _training_rows(ws, lineage, version, frame, columns)
    n_training = None if trained is None else int((trained & chosen).sum())
    rows = ScoredRows(
        dataset=ref,
        split=split,
        part=part,
        n_rows=int(chosen.sum()),
        n_training_rows=n_training,
        matched_by=matched_by,
        allowed_training_rows=bool(allow_training_rows and n_training),
    )
    if n_training and not allow_training_rows:
        raise InputError(
            f"{n_training:,} of the {rows.n_rows:,} rows to score ({rows.describe().split(':')[0]})"
            f" were used to train {name}, so their scores would be optimistic; score its "
            "held-out rows (the default) or pass --allow-training-rows"
        )
    labelled = frame.loc[chosen]
    # sensitive columns are read from the dataset (a model does not take them unless trained
    # with use_sensitive), numeric ones in the ranges recorded with the version
    audited = list(sensitive) if sensitive else [c for c in version.sensitive if c in frame]
    lacking = [c for c in audited if c not in frame.columns]
    if lacking:
        raise InputError(f"The sensitive column {lacking[0]!r} is not in the dataset {ref}")
    audit = datasets.sensitive_values(
        labelled,
        audited,
        {c.name: c.bins for c in version.schema.columns if c.bins is not None},
    )
    with start_run(
        "evaluate",
        name=f"evaluate {name} on {ref}",
        tags={"forgeml.kind": "evaluate", "forgeml.model": name},
        workspace=ws,
        actor=ctx.principal,
    ) as run:
        run.log_params(
            {
                "model": name,
                "dataset": ref,
                "split": split or "",
                "part": part or "all",
                "n_rows": rows.n_rows,
                "n_training_rows": "unknown" if n_training is None else n_training,
                "allow_training_rows": allow_training_rows,
                "seed": seed,
            }
        )
        report = run_evaluation(
            model,
            labelled[columns],
            labelled[version.target].to_numpy(),
            task=model.task,
            sensitive=audit,
            run=run,
            output_dir=output_dir,
            model_name=name,
            dataset_name=ref,
            seed=seed,
            explain=explain,
            rows=rows.describe(),
        )
    classes = tuple(model.signature.classes or ())
    return ModelEvaluation(name, run.run_id, rows, report, classes)


def _training_rows(
    ws: Any, lineage: dict[str, Any], version: Any, frame: pd.DataFrame, columns: list[str]
) -> tuple[np.ndarray | None, str]:
    """Which rows of ``frame`` the model was trained on, and how that was found."""
    import numpy as np

    from forgeml import data as datasets

    trained_on, split = lineage.get("dataset"), lineage.get("split")
    if not trained_on or not split:
        return None, "unknown"
    try:
        training = version if trained_on == version.ref else datasets.get(trained_on, workspace=ws)
        _info, parts = datasets.split_parts(training, split, workspace=ws)
    except NotFoundError:
        return None, "unknown"
    if training is version:
        return parts == 0, "split"
    train_frame = datasets.load(training, workspace=ws)
    keys = [c for c in [*columns, version.target] if c in frame.columns and c in train_frame]
    seen = _row_hashes(train_frame.loc[parts == 0, keys])
    return np.isin(_row_hashes(frame[keys]), seen), "content"


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    import pandas as pd

    return pd.util.hash_pandas_object(frame, index=False).to_numpy()
