"""Leak checks: columns that give the target away.

Three statistical checks, run by ``forgeml data add`` / ``validate`` and again when training
starts, before any of the budget is spent:

- **Single columns** that predict the target almost perfectly (the profile's predictive power,
  see ``_quality``; here also for a table that was never profiled).
- **Formulas**: one to three numeric columns that reproduce the target by a linear formula
  (a copy, a sum or difference such as ``casual + registered == cnt``, any exact linear fit),
  or two by a ratio or a product. Linear fits of every pair and triple are computed at once
  from the correlation matrix (the R² of a subset S is ``r_S' R_SS^-1 r_S``), so the cost does
  not grow with the rows beyond one matrix product; every hit is confirmed by a least-squares
  fit on the rows themselves.
- **Identifiers and row numbers** whose order follows the target.

Statistics cannot catch a *domain* leak: a column that is only known after the outcome but is
not a function of it, such as bank marketing's ``duration`` (the call's length, known once the
call ended, when the answer is known too). Such a column predicts the target well but not
perfectly, so no check here names it; after training, the too-good-to-be-true check (one column
dominating the model's attributions) is the hint, and reading the data's documentation is the
cure.

Large tables are checked on a seeded sample of ``MAX_ROWS`` rows; every finding states the rows
it was computed on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from forgeml.data._quality import Finding, Severity

__all__ = [
    "DOMAIN_LEAK_NOTE",
    "MAX_ROWS",
    "domain_leak_finding",
    "find_leaks",
    "leak_gate",
    "leak_summary",
]

# Rows the checks read at most (a seeded sample of larger tables).
MAX_ROWS = 50_000
# A formula whose R² reaches this reproduces the target: an error.
FORMULA_R2 = 0.999
# Columns examined for two-column formulas and for three-column fits (most associated first).
PAIR_COLUMNS = 200
TRIPLE_COLUMNS = 60
# Findings of one kind reported at most.
MAX_FINDINGS = 5
# Spearman correlation (regression) or predictive power (classification) of an identifier
# with the target from which its order is reported as following the target.
ID_CORRELATION = 0.3
ID_POWER = 0.1
# Columns with more missing values than this share are left out of the formulas.
_FORMULA_MAX_MISSING = 0.05
_ID_BINS = 20

DOMAIN_LEAK_NOTE = (
    "statistics cannot catch a domain leak: a column known only after the outcome that is not "
    "a function of it (bank marketing's duration, the length of the call whose answer is the "
    "target) predicts well but not perfectly; read the data's documentation and drop such "
    "columns (--drop)"
)


def _rows(n: int, sampled: int) -> str:
    if sampled < n:
        return f"a seeded sample of {sampled:,} of {n:,} rows"
    return f"{n:,} rows"


def _drop_hint(columns: Sequence[str]) -> str:
    return f"--drop {','.join(columns)}"


def _target_vector(target: pd.Series, task: str | None) -> np.ndarray | None:
    """The target as floats for the formula and identifier checks (binary: 0/1)."""
    if task == "regression":
        return pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64)
    codes, uniques = pd.factorize(target, sort=True, use_na_sentinel=True)
    if len(uniques) != 2:
        return None
    values = codes.astype(np.float64)
    values[codes < 0] = np.nan
    return values


def _numeric_block(
    frame: pd.DataFrame, kinds: Mapping[str, str], exclude: set[str]
) -> tuple[list[str], np.ndarray]:
    names: list[str] = []
    columns: list[np.ndarray] = []
    candidates = [
        name
        for name in frame.columns
        if name not in exclude and kinds.get(str(name)) in ("numeric", "integer")
    ]
    numeric = [c for c in candidates if pd.api.types.is_numeric_dtype(frame[c].dtype)]
    # number columns in one conversion (a wide table: one block, not one call per column)
    block = (
        frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        if len(numeric) == len(candidates) and numeric
        else None
    )
    for position, name in enumerate(candidates):
        if block is not None:
            values = block[:, position]
        else:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        if finite.mean() < 1 - _FORMULA_MAX_MISSING:
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            spread = np.nanstd(values)
        if spread == 0 or not np.isfinite(spread):  # constant, or beyond the float range
            continue
        names.append(str(name))
        columns.append(values)
    if not columns:
        return [], np.empty((len(frame), 0))
    return names, np.column_stack(columns)


def _fit(X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """R², coefficients and intercept of the least-squares fit of ``y`` on ``X``."""
    A = np.column_stack([X, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    residual = y - A @ coef
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 0.0
    return r2, coef[:-1], float(coef[-1])


def _number(value: float) -> str:
    return f"{value:.4g}"


def _formula(
    target: str, names: Sequence[str], coef: np.ndarray, intercept: float, y_scale: float
) -> str:
    terms: list[str] = []
    for name, c in zip(names, coef, strict=True):
        sign = "-" if c < 0 else "+"
        size = abs(float(c))
        term = name if abs(size - 1) < 1e-6 else f"{_number(size)}*{name}"
        terms.append(f"{sign} {term}")
    if abs(intercept) > 1e-6 * max(y_scale, 1.0):
        terms.append(f"{'-' if intercept < 0 else '+'} {_number(abs(intercept))}")
    text = " ".join(terms)
    return f"{target} = {text[2:] if text.startswith('+ ') else text}"


def _linear_candidates(corr_x: np.ndarray, corr_y: np.ndarray) -> Iterator[tuple[int, ...]]:
    """Subsets of one, two and three columns whose linear fit has R² >= FORMULA_R2, smallest
    first, computed from the correlation matrices."""
    k = len(corr_y)
    order = np.argsort(-np.abs(corr_y), kind="stable")
    for i in np.flatnonzero(corr_y**2 >= FORMULA_R2):
        yield (int(i),)
    pair_cols = np.sort(order[:PAIR_COLUMNS])
    if len(pair_cols) >= 2:
        a, b = np.array(list(itertools.combinations(pair_cols, 2))).T
        rab = corr_x[a, b]
        ok = np.abs(rab) < 0.9999
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = (corr_y[a] ** 2 + corr_y[b] ** 2 - 2 * corr_y[a] * corr_y[b] * rab) / (1 - rab**2)
        for j in np.flatnonzero(ok & (r2 >= FORMULA_R2)):
            yield (int(a[j]), int(b[j]))
    triple_cols = np.sort(order[:TRIPLE_COLUMNS])
    if len(triple_cols) >= 3 and k >= 3:
        idx = np.array(list(itertools.combinations(triple_cols, 3)))
        sub = corr_x[idx[:, :, None], idx[:, None, :]]
        rhs = corr_y[idx]
        det = np.linalg.det(sub)
        ok = det > 1e-6
        if ok.any():
            solved = np.linalg.solve(sub[ok], rhs[ok][:, :, None])[:, :, 0]
            r2 = np.einsum("ij,ij->i", rhs[ok], solved)
            for j in np.flatnonzero(r2 >= FORMULA_R2):
                yield tuple(int(v) for v in idx[ok][j])


def _formula_findings(
    names: list[str], X: np.ndarray, y: np.ndarray, target: str, rows: str, shown: str
) -> list[Finding]:
    rows_ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
    X, y = X[rows_ok], y[rows_ok]
    if len(y) < 20 or X.shape[1] == 0 or np.std(y) == 0:
        return []
    mean, std = X.mean(axis=0), X.std(axis=0)
    keep = std > 0
    names = [n for n, k in zip(names, keep, strict=True) if k]
    X, mean, std = X[:, keep], mean[keep], std[keep]
    Z = (X - mean) / std
    zy = (y - y.mean()) / y.std()
    corr_x = (Z.T @ Z) / len(y)
    corr_y = (Z.T @ zy) / len(y)
    found: list[Finding] = []
    flagged: list[set[int]] = []
    y_scale = float(np.abs(y).max())
    for subset in _linear_candidates(corr_x, corr_y):
        if any(f <= set(subset) for f in flagged) or len(found) >= MAX_FINDINGS:
            continue
        r2, coef, intercept = _fit(X[:, list(subset)], y)
        if r2 < FORMULA_R2:
            continue
        flagged.append(set(subset))
        columns = [names[i] for i in subset]
        exact = r2 >= 1 - 1e-9
        how = "exactly" if exact else "almost exactly"
        listed = ", ".join(repr(c) for c in columns)
        found.append(
            Finding(
                "leak_formula",
                Severity.ERROR,
                f"{listed} reproduce{'s' if len(columns) == 1 else ''} the target {target!r} "
                f"{how}: {_formula(shown, columns, coef, intercept, y_scale)} (R² {r2:.6f} on "
                f"{rows}); the target is computed from {'it' if len(columns) == 1 else 'them'}: "
                f"drop {'it' if len(columns) == 1 else 'them'} ({_drop_hint(columns)})",
                columns[0] if len(columns) == 1 else ",".join(columns),
                round(r2, 6),
            )
        )
    found.extend(_ratio_findings(names, X, y, target, rows, flagged, MAX_FINDINGS - len(found)))
    return found


def _ratio_findings(
    names: list[str],
    X: np.ndarray,
    y: np.ndarray,
    target: str,
    rows: str,
    flagged: list[set[int]],
    room: int,
) -> list[Finding]:
    """Pairs whose ratio or product reproduces the target. For positive values ``y = a / b``
    is ``log y = log a - log b``: the pairs are screened with the linear fits of the logs
    (from one correlation matrix), and each hit is confirmed on the values themselves."""
    if room <= 0 or not np.all(y > 0):
        return []
    positive = np.flatnonzero(np.all(X > 0, axis=0))
    if len(positive) < 2:
        return []
    logs = np.log(X[:, positive])
    std = logs.std(axis=0)
    keep = std > 0
    positive, logs, std = positive[keep], logs[:, keep], std[keep]
    if len(positive) < 2:
        return []
    Z = (logs - logs.mean(axis=0)) / std
    ly = np.log(y)
    zy = (ly - ly.mean()) / ly.std() if ly.std() > 0 else None
    if zy is None:
        return []
    corr_x = (Z.T @ Z) / len(y)
    corr_y = (Z.T @ zy) / len(y)
    found: list[Finding] = []
    for subset in _linear_candidates(corr_x, corr_y):
        if len(subset) != 2:
            continue
        a, b = (int(positive[i]) for i in subset)
        if any(f <= {a, b} for f in flagged):
            continue
        for symbol, values, columns in (
            ("/", X[:, a] / X[:, b], [names[a], names[b]]),
            ("/", X[:, b] / X[:, a], [names[b], names[a]]),
            ("*", X[:, a] * X[:, b], [names[a], names[b]]),
        ):
            r = float(np.corrcoef(values, y)[0, 1])
            if np.isfinite(r) and r**2 >= FORMULA_R2:
                flagged.append({a, b})
                found.append(
                    Finding(
                        "leak_formula",
                        Severity.ERROR,
                        f"{columns[0]!r} {symbol} {columns[1]!r} reproduces the target "
                        f"{target!r} (correlation {r:.6f} on {rows}): the target is computed "
                        f"from them: drop them ({_drop_hint(columns)})",
                        ",".join(columns),
                        round(r**2, 6),
                    )
                )
                break
        if len(found) >= room:
            break
    return found


def _identifier_findings(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    y: np.ndarray | None,
    target: pd.Series,
    task: str | None,
    target_name: str,
    id_column: str | None,
    rows: str,
) -> list[Finding]:
    found: list[Finding] = []
    for name in frame.columns:
        column = str(name)
        if column == target_name:
            continue
        values = frame[name]
        declared = column == id_column
        kind = kinds.get(column)
        # an integer with a distinct value in every row numbers rows even when not named so
        numbering = (
            kind == "integer" and len(values) >= 20 and values.notna().all() and values.is_unique
        )
        if kind != "identifier" and not declared and not numbering:
            continue
        order = pd.to_numeric(values, errors="coerce")
        if order.notna().mean() < 0.95:
            continue  # text identifiers carry no order to test
        x = order.to_numpy(dtype=np.float64)
        if task == "regression" and y is not None:
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 20:
                continue
            rho = float(pd.Series(x[ok]).corr(pd.Series(y[ok]), method="spearman"))
            if not np.isfinite(rho) or abs(rho) < ID_CORRELATION:
                continue
            strength = f"Spearman correlation {rho:.2f}"
        else:
            power = _ordered_power(x, target)
            if power < ID_POWER:
                continue
            strength = f"predictive power {power:.2f} in {_ID_BINS} ordered bins"
        found.append(
            Finding(
                "leak_identifier",
                Severity.WARNING,
                f"the identifier {column!r} follows the target {target_name!r} ({strength} on "
                f"{rows}): row order carries target information (often time); "
                + (
                    "it is used as a feature, where it leaks that order: drop it "
                    if numbering
                    else "it is not used as a feature, but a copy of it or a random split "
                    "over ordered rows can leak: declare a time column or drop it "
                )
                + f"({_drop_hint([column])})",
                column,
                round(abs(rho) if task == "regression" else power, 6),
            )
        )
    return found


def _ordered_power(x: np.ndarray, target: pd.Series) -> float:
    """Accuracy gain over the majority class of quantile bins of ``x`` (0: none, 1: perfect)."""
    codes, _ = pd.factorize(target, use_na_sentinel=True)
    ok = np.isfinite(x) & (codes >= 0)
    if ok.sum() < 20:
        return 0.0
    x, codes = x[ok], codes[ok]
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    bins = (ranks * _ID_BINS // len(x)).astype(np.int64)
    k = int(codes.max()) + 1
    table = np.bincount(bins * k + codes, minlength=_ID_BINS * k).reshape(_ID_BINS, k)
    base = table.sum(axis=0).max() / len(x)
    if base >= 1:
        return 0.0
    accuracy = table.max(axis=1).sum() / len(x)
    return float(max(0.0, (accuracy - base) / (1 - base)))


def find_leaks(
    frame: pd.DataFrame,
    *,
    target: str,
    kinds: Mapping[str, str],
    task: str | None,
    id_column: str | None = None,
    seed: int = 0,
) -> tuple[Finding, ...]:
    """Formula and identifier leaks of a table (single columns: see ``leak_gate``).

    Args:
        frame: the table, target included.
        target: the target column.
        kinds: column -> kind (``numeric``, ``integer``, ``identifier``...).
        task: ``regression``, ``classification``, ``binary`` or ``multiclass``; formulas are
            checked for numeric and two-class targets.
        id_column: the declared entity column (checked like an identifier).
        seed: seeds the row sample of tables over ``MAX_ROWS`` rows.

    Returns:
        ``leak_formula`` findings (errors) and ``leak_identifier`` findings (warnings), each
        naming its columns and the ``--drop`` that removes them.
    """
    if target not in frame.columns or task is None:
        return ()
    n = len(frame)
    if n > MAX_ROWS:
        positions = np.sort(np.random.default_rng(seed).choice(n, MAX_ROWS, replace=False))
        frame = frame.iloc[positions]
    rows = _rows(n, len(frame))
    task = "regression" if task == "regression" else "classification"
    y = _target_vector(frame[target], task)
    findings: list[Finding] = []
    if y is not None:
        exclude = {target, *([id_column] if id_column else [])}
        names, X = _numeric_block(frame, kinds, exclude)
        shown = target
        if task == "classification":
            positive = pd.factorize(frame[target], sort=True)[1][-1]
            shown = f"{target} (as 0/1, 1 = {positive!r})"
        findings.extend(_formula_findings(names, X, y, target, rows, shown))
    findings.extend(
        _identifier_findings(frame, kinds, y, frame[target], task, target, id_column, rows)
    )
    return tuple(findings)


def leak_gate(
    frame: pd.DataFrame,
    *,
    target: str,
    kinds: Mapping[str, str],
    task: str | None,
    id_column: str | None = None,
    seed: int = 0,
) -> tuple[Finding, ...]:
    """Every leak check on a table that has no stored profile (training's gate): the single
    columns that predict the target almost perfectly, then ``find_leaks``.

    Args: as ``find_leaks``.

    Returns:
        The findings, errors first.
    """
    from forgeml.data._analyze import analyze
    from forgeml.data._io import normalize_frame
    from forgeml.data._quality import leakage_findings

    if target not in frame.columns:
        return ()
    sample = frame
    if len(frame) > MAX_ROWS:
        positions = np.sort(np.random.default_rng(seed).choice(len(frame), MAX_ROWS, replace=False))
        sample = frame.iloc[positions]
    schema, profile = analyze(normalize_frame(sample.reset_index(drop=True)), target=target)
    single = leakage_findings(
        schema, profile, target=target, id_column=id_column, rows=_rows(len(frame), len(sample))
    )
    findings = [
        *single,
        *find_leaks(frame, target=target, kinds=kinds, task=task, id_column=id_column, seed=seed),
    ]
    named = {f.column for f in single}
    findings = [f for f in findings if f.check == "leakage" or f.column not in named]
    findings.sort(key=lambda f: -f.severity.rank)
    return tuple(findings)


def domain_leak_finding(n_rows: int) -> Finding:
    """An information finding: what the leak checks covered, and what they cannot see."""
    checked = min(n_rows, MAX_ROWS)
    return Finding(
        "leak_checks",
        Severity.INFO,
        f"leak checks ran on {_rows(n_rows, checked)} (single columns, formulas of up to three "
        f"numeric columns, identifiers); {DOMAIN_LEAK_NOTE}",
    )


def leak_summary(findings: Sequence[Finding]) -> str:
    """One paragraph for an error message: every leak finding and the ``--drop`` that removes
    them all."""
    columns: list[str] = []
    for f in findings:
        for c in (f.column or "").split(","):
            if c and c not in columns:
                columns.append(c)
    lines = "; ".join(f.message for f in findings)
    if len(findings) > 1 and columns:
        return f"{lines}. To drop them all: {_drop_hint(columns)}"
    return lines
