"""PII: detection by name and value patterns, the policy's actions, and the proof that a served
model trained on COMPAS never lets a raw personal value reach the store.

COMPAS (ProPublica's Broward County records) holds real names (``name``, ``first``, ``last``),
dates of birth and case numbers. Public data holds no e-mail addresses, phone, card or social
security numbers, so the columns ``email``, ``phone``, ``card`` and ``ssn`` below are synthetic,
made from a seeded generator (the card numbers pass the Luhn check).
"""

from __future__ import annotations

import hmac
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import forgeml as fm
from forgeml.config import Settings
from forgeml.errors import InputError
from forgeml.security import (
    PiiKey,
    PiiPolicy,
    PiiRule,
    apply_pii,
    detect_pii,
    not_applied,
    parse_pii_options,
)
from forgeml.store import PredictionRecord, Workspace
from forgeml.testing import ServerThread, auth_headers

_COLUMNS = [
    "name",
    "first",
    "last",
    "dob",
    "sex",
    "age",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "priors_count",
    "c_charge_degree",
    "c_case_number",
    "two_year_recid",
]


def _luhn_complete(digits: str) -> str:
    """``digits`` plus the check digit that makes the number pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def _synthetic_pii(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """E-mail, phone, card and social security columns for the rows of ``frame`` (synthetic:
    public data has none)."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = frame.copy()
    out["email"] = [
        f"{f}.{last}{i}@mail-{seed}.example.org".replace(" ", "")
        for i, (f, last) in enumerate(zip(frame["first"], frame["last"], strict=True))
    ]
    out["phone"] = [f"+1 {a}-{b}-{c:04d}" for a, b, c in rng.integers(200, 999, (n, 3))]
    out["card"] = [
        _luhn_complete("4" + "".join(map(str, rng.integers(0, 10, 14)))) for _ in range(n)
    ]
    out["ssn"] = [
        f"{a}-{b:02d}-{c:04d}"
        for a, b, c in zip(
            rng.integers(100, 600, n),
            rng.integers(10, 99, n),
            rng.integers(1000, 9999, n),
            strict=True,
        )
    ]
    return out


@pytest.fixture(scope="module")
def compas(shared_dataset: Callable[[str], Path]) -> pd.DataFrame:
    frame = pd.read_csv(shared_dataset("compas-scores-two-years.csv"), usecols=_COLUMNS)
    return _synthetic_pii(frame.loc[:, _COLUMNS].head(2500).reset_index(drop=True), seed=7)


def test_detection_by_name_and_values(compas: pd.DataFrame) -> None:
    rules = detect_pii(compas, sensitive=["sex"], skip=["two_year_recid"])
    reasons = {c: r.reason for c, r in rules.items()}
    assert {c for c, r in rules.items() if r.action == "hash"} == {
        "name",
        "first",
        "last",
        "dob",
        "c_case_number",
        "email",
        "phone",
        "card",
        "ssn",
    }
    assert reasons["email"] == "name: an e-mail address"
    assert rules["sex"] == PiiRule(
        "keep", "declared sensitive: kept for fairness audits (pii=hash to hash it)"
    )
    # by values alone (columns renamed so that no name hint applies)
    renamed = compas.rename(columns={"email": "c1", "phone": "c2", "card": "c3", "ssn": "c4"})
    found = detect_pii(renamed.loc[:, ["c1", "c2", "c3", "c4", "c_charge_degree", "race"]])
    assert {c: r.reason for c, r in found.items()} == {
        "c1": "values: e-mail addresses",
        "c2": "values: phone numbers",
        "c3": "values: payment card numbers (Luhn check)",
        "c4": "values: US social security numbers",
    }
    # 16 digits failing the Luhn check are not card numbers; dates are not phone numbers
    bad_cards = compas["card"].str[:-1] + ((compas["card"].str[-1].astype(int) + 1) % 10).astype(
        str
    )
    assert detect_pii(pd.DataFrame({"x": bad_cards, "d": compas["dob"]})) == {}
    # card numbers read from a CSV file are integers
    as_numbers = pd.DataFrame({"n": compas["card"].astype("int64"), "id": range(len(compas))})
    assert detect_pii(as_numbers) == {
        "n": PiiRule("hash", "values: payment card numbers (Luhn check)")
    }


def test_not_applied_names_the_columns_holding_values_the_policy_did_not_leave() -> None:
    key = PiiKey(b"k" * 32)
    actions = {"who": "hash", "what": "mask"}
    hashed = [key.hash(f"person {i % 7}") for i in range(200)]
    ok = pd.DataFrame({"who": hashed, "what": ["***"] * 200, "other": range(200)})
    ok.loc[3, "who"] = None
    ok.loc[4, "what"] = np.nan
    assert not_applied(ok, actions) == []  # 200 rows: each distinct value checked once
    assert not_applied(ok.head(5), actions) == []
    assert not_applied(ok.assign(who=pd.array([pd.NA] * 200, dtype="string")), actions) == []
    raw = ok.copy()
    raw.loc[150, "who"] = "person 3"
    raw.loc[7, "what"] = "F"
    assert not_applied(raw, actions) == ["who", "what"]
    assert not_applied(ok.assign(who=range(200)), actions) == ["who"]  # numbers are raw
    # a hash's look-alike: upper-case hex, wrong length
    for fake in ("pii_0123456789ABCDEF", "pii_0123456789abcde", "xpii_0123456789abcdef"):
        assert not_applied({"who": [hashed[0], fake]}, actions) == ["who"], fake
    assert not_applied({"who": hashed[:3], "extra": ["raw"]}, actions) == []


def test_hashes_are_keyed_stable_and_idempotent() -> None:
    key, other = PiiKey(b"k" * 32), PiiKey(b"o" * 32)
    assert key.hash("ann smith") == key.hash("ann smith") != other.hash("ann smith")
    assert (
        key.hash("ann smith")
        == "pii_" + hmac.new(b"k" * 32, b"ann smith", "sha256").hexdigest()[:16]
    )
    assert key.hash(5551234567) == key.hash("5551234567")
    assert key.hash(key.hash("x")) == key.hash("x") and key.hash(None) is None
    policy = PiiPolicy({"a": PiiRule("hash", "declared"), "b": PiiRule("mask", "declared")}, key.id)
    columns = policy.apply_columns({"a": ["x", None], "b": ["y", None], "c": [1, 2]}, key)
    assert columns == {"a": [key.hash("x"), None], "b": ["***", None], "c": [1, 2]}
    with pytest.raises(InputError, match=f"made with key {key.id}"):
        policy.apply_columns({"a": ["x"]}, other)
    with pytest.raises(InputError, match="--pii takes COLUMN=ACTION"):
        parse_pii_options(["name"])
    with pytest.raises(InputError, match="must be one of hash, mask, keep; got 'drop'"):
        parse_pii_options(["name=drop"])


def _texts(data: bytes) -> Iterator[bytes]:
    """The bytes of a stored file and of what it holds when it is compressed (zip members,
    Parquet tables as CSV)."""
    yield data
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                yield from _texts(z.read(member))
    if data[:4] == b"PAR1":
        yield pd.read_parquet(io.BytesIO(data)).to_csv(index=False).encode()


_TOKEN = re.compile(rb"[A-Za-z0-9.@+'-]+(?: [A-Za-z0-9.@+'-]+)*")


def _leaks(data: bytes, raw: set[bytes]) -> set[str]:
    """The raw values found in ``data``: every run of 1 to 4 words of the characters personal
    values are made of is looked up (a scan linear in the bytes, whatever the number of
    values)."""
    found: set[bytes] = set()
    for text in _texts(data):
        for token in _TOKEN.findall(text):
            words = [w.strip(b".-'+") for w in token.split(b" ")]
            for i in range(len(words)):
                for j in range(i + 1, min(i + 4, len(words)) + 1):
                    candidate = b" ".join(words[i:j])
                    if candidate in raw:
                        found.add(candidate)
    return {v.decode() for v in found}


def _table_dump(ws: Workspace) -> bytes:
    """Every row of every table of the metadata store, as text."""
    metadata = sa.MetaData()
    with ws.db.engine.connect() as conn:
        metadata.reflect(bind=conn)
        parts = [
            repr(row).encode()
            for table in metadata.sorted_tables
            for row in conn.execute(sa.select(table)).all()
        ]
    return b"\n".join(parts)


def test_no_raw_personal_value_reaches_the_store(
    compas: pd.DataFrame, store_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "ws"
    ws = Workspace(Settings(home=home, store_url=store_url, artifacts=tmp_path / "artifacts"))
    version = fm.data.add(
        compas,
        name="compas",
        target="two_year_recid",
        sensitive=["sex"],
        pii={"race": "hash", "c_charge_degree": "mask"},
        workspace=ws,
        actor="setup",
    )
    assert version.pii.action("race") == "hash" and version.pii.action("email") == "hash"
    result = fm.train(
        "compas",
        models=["lgbm"],
        time_budget=4,
        max_trials=2,
        evaluate=False,
        allow_leaks=True,
        workspace=ws,
        actor="setup",
    )
    registered = fm.register(result, name="compas", workspace=ws, actor="setup")
    fm.registry.promote("compas", registered.version, workspace=ws, actor="setup")
    loaded = fm.load("compas@production", workspace=ws)
    inputs = list(loaded.signature.names)
    assert "race" in inputs  # a hashed column the model takes: the server hashes it too
    card = loaded.card()
    assert "## Personal data" in card and "| email | keyed hash | name: an e-mail address |" in card

    # new people (synthetic PII for them too), predicted with their raw values over HTTP
    people = _synthetic_pii(compas.sample(60, random_state=3).reset_index(drop=True), seed=11)
    people["name"] = [f"zelda{i} quixotic" for i in range(len(people))]
    people["dob"] = [f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}" for i in range(len(people))]
    records = json.loads(people.drop(columns=["two_year_recid"]).to_json(orient="records"))
    expected = loaded.predict(people.drop(columns=["two_year_recid"]))
    headers = auth_headers(ws)  # access control is on in team mode (PostgreSQL)
    ids: list[str] = []
    spool_bytes: list[bytes] = []
    with ServerThread(ws, models=("compas@production",)) as server:
        for start in range(0, len(records), 10):
            answer = httpx.post(
                f"{server.url}/v1/models/compas/predict",
                json={"records": records[start : start + 10]},
                headers=headers,
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["predictions"] == expected[start : start + 10].tolist()
            ids.append(body["request_id"])
        labels = people["two_year_recid"].tolist()
        batches = [
            {"request_id": r, "labels": labels[i * 10 : i * 10 + 10]} for i, r in enumerate(ids)
        ]
        feedback = httpx.post(
            f"{server.url}/v1/feedback",
            json={"feedback": batches},
            headers=headers,
            timeout=30,
        )
        assert feedback.status_code < 300, feedback.text
        spool_bytes = [p.read_bytes() for p in (home / "spool").rglob("*") if p.is_file()]
    assert any(spool_bytes)  # the journal was read while the server ran

    logged = ws.predlog.predictions("compas")
    assert len(logged) == len(people) and logged["label"].notna().all()
    assert logged["race"].str.startswith("pii_").all()
    report = fm.monitor.served_report("compas@production", window=30, workspace=ws, n_bootstrap=50)
    (home / "reports").mkdir()
    (home / "reports" / "monitor.json").write_text(report.to_json())
    fm.monitor.write_served_html(report, home / "reports" / "monitor.html")
    assert report.windows and report.windows[0].input_drift is not None
    hashed_note = next(n for n in report.notes if "compared as categories of keyed hashes" in n)
    assert "race" in hashed_note.split(":")[0].split(", ")

    _assert_no_raw_value_stored(ws, tmp_path, spool_bytes, compas, people)


def _assert_no_raw_value_stored(
    ws: Workspace, tmp_path: Path, spool_bytes: list[bytes], *frames: pd.DataFrame
) -> None:
    """No raw personal value of ``frames`` in any file under ``tmp_path`` (SQLite file,
    artifacts, reports), in the journal files read while the server ran, or in any row of
    the metadata store; closes ``ws``."""
    compas = frames[0]
    raw = set()
    for frame in frames:
        for column in ("name", "dob", "c_case_number", "email", "phone", "card", "ssn", "race"):
            raw |= {str(v).encode() for v in frame[column].dropna() if len(str(v)) >= 8}
    raw |= {b"Caucasian", b"African-American", b"Hispanic"}  # race: hashed by the policy
    assert len(raw) > 10_000
    # the scan finds what it looks for: a row of the data as text holds its values
    assert _leaks(compas.head(1).to_csv().encode(), raw) >= {compas["name"][0], compas["email"][0]}
    leaks: dict[str, set[str]] = {}
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        found = _leaks(path.read_bytes(), raw)
        if found:
            leaks[str(path.relative_to(tmp_path))] = found
    for i, data in enumerate(spool_bytes):
        if found := _leaks(data, raw):
            leaks[f"spool file {i}"] = found
    if found := _leaks(_table_dump(ws), raw):
        leaks["metadata store rows"] = found
    ws.close()
    assert not leaks, {k: sorted(v)[:5] for k, v in leaks.items()}


def _plain_pipeline(inputs: list[str], categorical: list[str], unknown: str = "ignore") -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown=unknown), categorical)],
        remainder="passthrough",
    )
    return make_pipeline(encode, LogisticRegression(max_iter=500))


def test_no_raw_personal_value_reaches_the_store_from_dataframes(
    compas: pd.DataFrame, store_url: str, tmp_path: Path
) -> None:
    """The in-memory paths apply the dataset path's policy: ``fm.train`` on a DataFrame and
    ``fm.register`` of a plain scikit-learn pipeline with a raw DataFrame sample, both served
    and sent raw rows and feedback: no raw value in any stored byte."""
    home = tmp_path / "ws"
    ws = Workspace(Settings(home=home, store_url=store_url, artifacts=tmp_path / "artifacts"))
    target = "two_year_recid"
    result = fm.train(
        compas,
        target=target,
        sensitive=["sex"],
        pii={"race": "hash", "c_charge_degree": "mask"},
        models=["lgbm"],
        time_budget=60,
        max_trials=2,
        max_latency_ms=None,
        allow_leaks=True,
        seed=0,
        workspace=ws,
        actor="setup",
    )
    assert result.pii is not None
    assert {c: r.action for c, r in result.pii.changed.items()} == {
        "name": "hash", "first": "hash", "last": "hash", "dob": "hash", "race": "hash",
        "c_charge_degree": "mask", "c_case_number": "hash", "email": "hash", "phone": "hash",
        "card": "hash", "ssn": "hash",
    }  # fmt: skip
    assert result.pii.action("sex") == "keep"  # declared sensitive: kept for the audit
    assert "race" in result.feature_columns
    assert ws.runs.get_run(result.run_id).params["pii"].startswith("name=hash,")
    framed = fm.register(
        result, name="framed", sample=compas.drop(columns=target), workspace=ws, actor="setup"
    )
    # a plain pipeline fitted on the policy's table, registered with the raw rows as sample
    inputs = ["race", "phone", "age", "priors_count", "juv_fel_count"]
    hashed, policy = apply_pii(compas, ws.settings, pii={"race": "hash"}, target=target)
    assert policy.key_id == result.pii.key_id and hashed["race"].str.startswith("pii_").all()
    pipeline = _plain_pipeline(inputs, ["race", "phone"]).fit(hashed[inputs], hashed[target])
    plain = fm.register(
        pipeline, name="plain", sample=compas, pii={"race": "hash"}, workspace=ws, actor="setup"
    )
    for name, version in (("framed", framed.version), ("plain", plain.version)):
        fm.registry.promote(name, version, workspace=ws, actor="setup")
    loaded = {n: fm.load(f"{n}@production", workspace=ws) for n in ("framed", "plain")}
    assert loaded["plain"].pii.action("race") == "hash" and loaded["plain"].pii.action("phone") == (
        "hash"
    )
    assert "## Personal data" in loaded["framed"].card()
    reference, _ = fm.registry.reference("plain@production", workspace=ws)
    assert reference["race"].str.startswith("pii_").all()

    people = _synthetic_pii(compas.sample(40, random_state=5).reset_index(drop=True), seed=13)
    people["name"] = [f"yorick{i} quillfeather" for i in range(len(people))]
    rows = people.drop(columns=[target])
    records = json.loads(rows.to_json(orient="records"))
    expected = {
        "framed": result.model.predict(result.pii.apply_frame(rows, policy_key(ws))),
        "plain": pipeline.predict(policy.apply_frame(rows, policy_key(ws))[inputs]),
    }
    headers = auth_headers(ws)
    spool_bytes: list[bytes] = []
    with ServerThread(ws, models=("framed@production", "plain@production")) as server:
        for name in ("framed", "plain"):
            ids = []
            for start in range(0, len(records), 10):
                answer = httpx.post(
                    f"{server.url}/v1/models/{name}/predict",
                    json={"records": records[start : start + 10]},
                    headers=headers,
                    timeout=30,
                )
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body["predictions"] == expected[name][start : start + 10].tolist(), name
                ids.append(body["request_id"])
            labels = people[target].tolist()
            feedback = httpx.post(
                f"{server.url}/v1/feedback",
                json={
                    "feedback": [
                        {"request_id": r, "labels": labels[i * 10 : i * 10 + 10]}
                        for i, r in enumerate(ids)
                    ]
                },
                headers=headers,
                timeout=30,
            )
            assert feedback.status_code < 300, feedback.text
        spool_bytes = [p.read_bytes() for p in (home / "spool").rglob("*") if p.is_file()]
    assert any(spool_bytes)
    for name in ("framed", "plain"):
        logged = ws.predlog.predictions(name)
        assert len(logged) == len(people) and logged["race"].str.startswith("pii_").all()
    report = fm.monitor.served_report("plain@production", window=40, workspace=ws, n_bootstrap=20)
    (home / "reports").mkdir()
    fm.monitor.write_served_html(report, home / "reports" / "monitor.html")
    _assert_no_raw_value_stored(ws, tmp_path, spool_bytes, compas, people)


def policy_key(ws: Workspace) -> PiiKey:
    from forgeml.security import pii_key

    key = pii_key(ws.settings, create=False)
    assert key is not None
    return key


def test_register_refuses_a_model_fitted_on_raw_values_the_policy_replaces(
    compas: pd.DataFrame, sqlite_workspace: Workspace
) -> None:
    ws = sqlite_workspace
    inputs = ["phone", "age", "priors_count"]
    pipeline = _plain_pipeline(inputs, ["phone"], unknown="error")
    pipeline.fit(compas[inputs], compas["two_year_recid"])  # raw phone numbers
    with pytest.raises(InputError, match=r"phone \(hash: name: a phone number\).*fails"):
        fm.register(pipeline, name="raw", sample=compas, workspace=ws)
    assert ws.models.list_models() == []
    # declared keep: an explicit, recorded opt-out
    kept = fm.register(pipeline, name="raw", sample=compas, pii={"phone": "keep"}, workspace=ws)
    assert fm.load(kept.ref, workspace=ws).pii.action("phone") == "keep"
    with pytest.raises(InputError, match="pii: the column 'mail' is not in the table"):
        fm.register(pipeline, name="raw", sample=compas, pii={"mail": "hash"}, workspace=ws)
    with pytest.raises(InputError, match="pii= applies to a table"):
        fm.train("raw", target="two_year_recid", pii={"phone": "keep"}, workspace=ws)
    with pytest.raises(InputError, match="the target 'two_year_recid' cannot be hashed"):
        fm.train(compas, target="two_year_recid", pii={"two_year_recid": "hash"}, workspace=ws)


def test_register_refuses_a_model_that_reads_raw_values_and_ignores_unknown_ones(
    compas: pd.DataFrame, sqlite_workspace: Workspace
) -> None:
    """A pipeline fitted on raw values that reads unseen categories as zeros does not fail on
    the hashed or masked values: its answers change, so it is refused, naming the column. One
    fitted on the policy's table, or one that does not read the column, is accepted."""
    ws = sqlite_workspace
    target = "two_year_recid"
    inputs = ["phone", "c_charge_degree", "age", "priors_count"]
    rows = compas.head(1500)
    declared = {"phone": "keep", "c_charge_degree": "mask"}
    # phone kept, the charge degree fitted raw (F/M): masked, every value reads as unseen
    raw_degree = _plain_pipeline(inputs, ["phone", "c_charge_degree"])
    raw_degree.fit(rows[inputs], rows[target])
    with pytest.raises(InputError, match=r"reads raw values of: c_charge_degree \(mask: declared"):
        fm.register(raw_degree, name="raw", sample=rows, pii=declared, workspace=ws)
    # the phone numbers fitted raw, hashed by default (named like one): they matter
    phone_only = ["phone", "age", "priors_count"]
    raw_phone = _plain_pipeline(phone_only, ["phone"]).fit(rows[phone_only], rows[target])
    with pytest.raises(InputError, match=r"reads raw values of: phone \(hash: name") as refused:
        fm.register(raw_phone, name="raw", sample=rows, workspace=ws)
    assert "apply_pii" in str(refused.value) and "c_charge_degree" not in str(refused.value)
    assert ws.models.list_models() == []
    # fitted on what the policy leaves: accepted (its answers on raw values differ too)
    leaves, _ = apply_pii(rows, ws.settings, pii=declared, target=target)
    assert set(leaves["c_charge_degree"]) == {"***"}
    fitted = _plain_pipeline(inputs, ["phone", "c_charge_degree"]).fit(leaves[inputs], rows[target])
    raw_answers = fitted.predict_proba(rows[inputs])
    assert not np.allclose(raw_answers, fitted.predict_proba(leaves[inputs]))
    kept = fm.register(fitted, name="fitted", sample=rows, pii=declared, workspace=ws)
    loaded = fm.load(kept.ref, workspace=ws)
    np.testing.assert_allclose(
        loaded.predict_proba(rows[inputs]), fitted.predict_proba(leaves[inputs])
    )
    # a column it takes but does not read: answers equal on raw and hashed values, accepted
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    ignores = make_pipeline(
        ColumnTransformer([("phone", "drop", ["phone"])], remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(rows[phone_only], rows[target])
    assert fm.register(ignores, name="ignores", sample=rows, workspace=ws).version == 1


def test_the_trained_model_refuses_raw_values_in_columns_the_policy_replaced(
    compas: pd.DataFrame, store_url: str, tmp_path: Path
) -> None:
    """``fm.train`` on a raw table returns a model that takes the PII columns as the policy
    leaves them: raw values there raise, naming the columns and what to do; the policy's
    output, missing values, ``fm.load`` and the server on raw rows all answer."""
    ws = Workspace(Settings(home=tmp_path / "ws", store_url=store_url))
    target = "two_year_recid"
    table = compas.drop(columns=["card", "ssn", "dob", "c_case_number"]).head(1500)
    result = fm.train(
        table,
        target=target,
        pii={"c_charge_degree": "mask"},
        models=["lgbm"],
        time_budget=60,
        max_trials=1,
        max_latency_ms=None,
        allow_leaks=True,
        seed=0,
        workspace=ws,
        actor="setup",
    )
    assert result.pii is not None
    model = result.model
    read = set(model.feature_names_in_.tolist())
    # e-mail and phone are unique per row (identifiers, not read); names repeat
    assert {"first", "last", "c_charge_degree"} <= read and "email" not in read
    assert model.pii_inputs == {c: r.action for c, r in result.pii.changed.items() if c in read}
    people = _synthetic_pii(compas.tail(30).reset_index(drop=True), seed=21).drop(columns=[target])
    raw = people.loc[:, table.columns.drop(target)]
    # up to 100 rows go through the compiled model, more through the members' pipelines
    many = pd.concat([raw] * 5, ignore_index=True)
    for predict in (model.predict, model.predict_proba):
        for rows in (raw, many):
            with pytest.raises(ValueError, match=r"raw values in: .*first \(hashed") as refused:
                predict(rows)
            assert "apply_pii" in str(refused.value) and "forgeml.load" in str(refused.value)
    with pytest.raises(InputError, match=r"raw values in: last \(hashed"):
        model.predict(
            result.pii.apply_frame(raw, policy_key(ws)).head(1).assign(last=raw["last"][:1])
        )
    key = policy_key(ws)
    hashed = result.pii.apply_frame(raw, key)
    expected = model.predict_proba(hashed)
    np.testing.assert_allclose(model.predict_proba(hashed.head(1)), expected[:1])
    # a masked column: "***" or missing passes, anything else is a raw value
    with pytest.raises(InputError, match=r"raw values in: c_charge_degree \(masked"):
        model.predict(hashed.assign(c_charge_degree="F"))
    with_missing = hashed.assign(first=None, last=np.nan, c_charge_degree=None)
    assert len(model.predict(with_missing)) == len(raw)
    applied, _ = apply_pii(raw, ws.settings, policy=result.pii)
    np.testing.assert_array_equal(model.predict_proba(applied), expected)
    # fm.load and the server hash raw rows first
    version = fm.register(result, name="people", workspace=ws, actor="setup")
    loaded = fm.load(version.ref, workspace=ws)
    np.testing.assert_allclose(loaded.predict_proba(raw), expected)
    records = json.loads(raw.to_json(orient="records"))
    with ServerThread(ws, models=(version.ref,)) as server:
        answer = httpx.post(
            f"{server.url}/v1/models/people/predict",
            json={"records": records},
            headers=auth_headers(ws),
            timeout=30,
        )
        single = httpx.post(
            f"{server.url}/v1/models/people/predict",
            json={"records": records[:1]},
            headers=auth_headers(ws),
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == model.predict(hashed).tolist()
    assert (
        single.status_code == 200
        and single.json()["predictions"] == answer.json()["predictions"][:1]
    )
    ws.close()


def test_cli_data_add_prints_the_policy_and_refuses_a_bad_action(
    compas: pd.DataFrame, tmp_path: Path
) -> None:
    from tests.cli.test_cli import assert_clean_error, forgeml

    path = tmp_path / "people.csv"
    compas.head(300).to_csv(path, index=False)
    home = tmp_path / "ws"
    bad = forgeml("data", "add", str(path), "--name", "p", "--pii", "email=drop", home=home)
    assert_clean_error(bad, 2, "--pii email", "hash, mask, keep", "'drop'")
    unknown = forgeml("data", "add", str(path), "--name", "p", "--pii", "mail=hash", home=home)
    assert_clean_error(unknown, 2, "'mail' is not in the table")
    target = forgeml(
        "data", "add", str(path), "--name", "p", "--target", "two_year_recid",
        "--pii", "two_year_recid=hash", home=home,
    )  # fmt: skip
    assert_clean_error(target, 2, "the target 'two_year_recid' cannot be hashed")
    done = forgeml(
        "data", "add", str(path), "--name", "p", "--pii", "age=mask", "--pii", "email=keep",
        home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "PII email: kept as given (declared)" in done.stdout
    assert "PII age: masked (declared)" in done.stdout
    assert "PII ssn: hashed (name: a national identification number)" in done.stdout
    shown = forgeml("data", "list", "p", "--json", home=home)
    policy = json.loads(shown.stdout)[0]["pii"]
    assert policy["email"] == {"action": "keep", "reason": "declared"}, policy
    page = tmp_path / "p.html"
    assert forgeml("data", "report", "p", "--html", str(page), home=home).returncode == 0
    text = page.read_text()
    assert "Personal data (PII policy)" in text
    assert "<tr><td>age</td><td>present / missing only</td><td>declared</td></tr>" in text
    assert policy["card"] == {
        "action": "hash",
        "reason": "values: payment card numbers (Luhn check)",
    }


def test_a_masked_input_is_reported_as_not_monitored(
    compas: pd.DataFrame, sqlite_workspace: Workspace
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    ws = sqlite_workspace
    frame = compas.loc[:, ["age", "priors_count", "juv_fel_count", "sex", "two_year_recid"]]
    version = fm.data.add(
        frame, name="m", target="two_year_recid", pii={"sex": "mask"}, workspace=ws
    )
    stored = fm.data.load(version, workspace=ws)
    assert set(stored["sex"]) == {"***"}
    X = stored.drop(columns="two_year_recid").astype({"sex": "category"})
    model = HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype")
    model.fit(X, stored["two_year_recid"])
    fm.register(model, name="m", dataset=version.ref, workspace=ws)
    loaded = fm.load("m@1", workspace=ws)
    assert loaded.pii.action("sex") == "mask"
    raw = frame.drop(columns="two_year_recid").head(40)
    assert (loaded.predict(raw) == model.predict(X.head(40))).all()  # raw "Male" masked first
    ws.predlog.write_predictions(
        [
            PredictionRecord(
                request_id=f"r{i}",
                model="m",
                version=1,
                role="primary",
                time_ms=1_700_000_000_000 + i,
                latency_ms=1.0,
                n_rows=1,
                inputs=loaded.apply_pii({c: [raw[c].iloc[i]] for c in raw.columns}),
                outputs={"predictions": [0], "probabilities": [[0.6, 0.4]], "classes": [0, 1]},
                protocol="json",
            )
            for i in range(40)
        ]
    )
    report = fm.monitor.served_report("m@1", window=40, workspace=ws, n_bootstrap=20)
    assert any(n.startswith("sex: not monitored for drift: masked") for n in report.notes)
    drift = report.windows[0].input_drift
    assert drift is not None and "sex" not in drift["columns"]


def test_a_raw_test_table_is_hashed_as_its_dataset_was(
    compas: pd.DataFrame, tmp_path: Path
) -> None:
    """Training on a stored dataset with a test table given in memory: the test rows get the
    dataset's policy before the evaluation reads them, so the scores are those of the hashed
    rows, not of raw values the model never saw."""
    ws = Workspace(Settings(home=tmp_path / "ws"))
    target = "two_year_recid"
    table = compas.drop(columns=["card", "ssn", "dob", "c_case_number"])
    fit, test = table.head(1500), table.iloc[1500:2000].reset_index(drop=True)
    version = fm.data.add(
        fit, name="people", target=target, pii={"c_charge_degree": "mask"}, workspace=ws
    )
    options: dict[str, Any] = {
        "target": target, "models": ["lgbm"], "time_budget": 60, "max_trials": 1,
        "max_latency_ms": None, "allow_leaks": True, "seed": 0, "workspace": ws,
    }  # fmt: skip
    raw = fm.train(version.ref, test_data=test, **options)
    hashed, _ = apply_pii(test, ws.settings, policy=version.pii)
    assert (hashed["first"] != test["first"]).all()
    applied = fm.train(version.ref, test_data=hashed, **options)
    assert raw.test_metrics == applied.test_metrics
    ws.close()
