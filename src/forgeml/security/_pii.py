"""PII policy: which columns hold personal data, and what forgeml stores in their place.

A column is PII when it is declared so (``pii={"col": "hash"}``, ``--pii col=hash``), when its
name says so (``name``, ``first``, ``last``, ``dob``, ``email``, ``phone``, ``ssn``...), or when
most of its text values look like personal data: e-mail addresses, phone numbers, payment card
numbers (13 to 19 digits passing the Luhn check) or US social security numbers. Columns declared
sensitive (protected attributes such as race or sex, audited for fairness) are kept by default,
with that reason recorded, unless a name or value pattern also marks them.

Actions:

==========  =====================================================================================
``hash``    the value is replaced by ``pii_`` + 16 hex digits of HMAC-SHA256 under the
            workspace's PII key: the same value gives the same hash (drift compares them as
            categories, joins still work), and without the key no dictionary of names or
            numbers maps them back. Missing values stay missing. Hashing a hash changes nothing.
``mask``    the value is removed: ``"***"`` where there was one, missing where there was none.
``keep``    stored as given: an explicit, recorded opt-out.
==========  =====================================================================================

The policy is applied where data enters forgeml (``data.add``; a served model's requests, before
they are checked, predicted and logged; ``LoadedModel.prepare``), so the stored table, its
profile, the model's signature and reference sample, the prediction log and every report hold
only what the policy leaves. The key is ``FORGEML_PII_KEY`` (or ``_FILE``), else
``<home>/pii.key``, created on first use (32 random bytes, mode 0600). A policy records the id
of the key its hashes were made with; applying it with another key is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from forgeml.config import Settings

__all__ = [
    "PII_ACTIONS",
    "PiiKey",
    "PiiPolicy",
    "PiiRule",
    "apply_pii",
    "detect_pii",
    "not_applied",
    "parse_pii_options",
    "pii_key",
]

PII_ACTIONS = ("hash", "mask", "keep")
HASH_PREFIX = "pii_"
MASKED = "***"
_HASHED = re.compile(r"^pii_[0-9a-f]{16}$")
_SAMPLE = 2_000
_CACHE = 4_096
_UNIQUE_FROM = 64  # rows from which ``not_applied`` checks each distinct value once
_SHARE = 0.8  # share of a column's non-missing sampled values a pattern must match

# Column names (lower case, runs of other characters as "_") that hold personal data.
_NAME_HINTS = {
    "name": "a person's name",
    "first": "a first name",
    "last": "a last name",
    "first_name": "a first name",
    "firstname": "a first name",
    "last_name": "a last name",
    "lastname": "a last name",
    "middle_name": "a middle name",
    "surname": "a last name",
    "given_name": "a first name",
    "family_name": "a last name",
    "full_name": "a person's name",
    "fullname": "a person's name",
    "dob": "a date of birth",
    "date_of_birth": "a date of birth",
    "birth_date": "a date of birth",
    "birthdate": "a date of birth",
    "birthday": "a date of birth",
    "email": "an e-mail address",
    "e_mail": "an e-mail address",
    "email_address": "an e-mail address",
    "mail": "an e-mail address",
    "phone": "a phone number",
    "phone_number": "a phone number",
    "telephone": "a phone number",
    "mobile": "a phone number",
    "cell_phone": "a phone number",
    "ssn": "a national identification number",
    "social_security_number": "a national identification number",
    "national_id": "a national identification number",
    "passport": "a passport number",
    "passport_number": "a passport number",
    "address": "a postal address",
    "street_address": "a postal address",
    "credit_card": "a payment card number",
    "card_number": "a payment card number",
    "iban": "a bank account number",
}
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(
    r"^(\+\d{1,3}[\s.-]?)?(\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}$|^\+\d{8,15}$"
)
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_card(text: str) -> bool:
    if not _CARD.match(text):
        return False
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _is_phone(text: str) -> bool:
    if _DATE_LIKE.match(text) or not _PHONE.match(text):
        return False
    return 7 <= sum(ch.isdigit() for ch in text) <= 15


_PATTERNS = (
    ("email", "e-mail addresses", _EMAIL.match),
    ("ssn", "US social security numbers", _SSN.match),
    ("card", "payment card numbers (Luhn check)", _is_card),
    ("phone", "phone numbers", _is_phone),
)


@dataclass(frozen=True, slots=True)
class PiiRule:
    """What is stored for one column, and why.

    Attributes:
        action: ``hash``, ``mask`` or ``keep``.
        reason: why (``declared``, ``name: a first name``, ``values: e-mail addresses``...).
    """

    action: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "reason": self.reason}


class PiiKey:
    """The HMAC key PII hashes are made with, and its public id.

    Args:
        secret: the key (32 bytes).
    """

    __slots__ = ("_cache", "_inner", "_outer", "id")

    def __init__(self, secret: bytes) -> None:
        # HMAC-SHA256 (RFC 2104) from its two keyed states, copied per value: about half
        # the cost of ``hmac.new`` per value (tested equal to it)
        padded = secret.ljust(64, b"\0") if len(secret) <= 64 else hashlib.sha256(secret).digest()
        padded = padded.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        # recent values -> hashes (categories repeat); bounded, emptied when full
        self._cache: dict[str, str] = {}
        #: 16 hex digits naming the key (a one-way function of it, not the key)
        self.id = hmac.new(secret, b"forgeml.pii.key-id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"PiiKey(id={self.id!r})"

    def hash(self, value: Any) -> Any:
        """The keyed hash of one value (missing stays missing; a hash stays itself)."""
        if value is None or (isinstance(value, float) and value != value):
            return None
        text = value if type(value) is str else _text(value)
        found = self._cache.get(text)
        if found is not None:
            return found
        if text.startswith(HASH_PREFIX) and _HASHED.match(text):
            return text
        inner = self._inner.copy()
        inner.update(text.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        hashed = HASH_PREFIX + outer.hexdigest()[:16]
        cache = self._cache
        if len(cache) >= _CACHE:
            cache.clear()
        cache[text] = hashed
        return hashed


def _text(value: Any) -> str:
    """One text form per value, so ``5551234567`` and ``"5551234567"`` hash alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if hasattr(value, "item"):  # NumPy scalars
        return _text(value.item())
    return str(value)


def _mask(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return MASKED


@dataclass(frozen=True)
class PiiPolicy:
    """Column -> ``PiiRule``, and the id of the key hashes were made with.

    Only columns with a rule are listed; every other column is stored as given.
    """

    rules: Mapping[str, PiiRule]
    key_id: str | None = None
    changed: dict[str, PiiRule] = field(init=False, repr=False, compare=False)
    _hashes: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the columns whose values are replaced (hashed or masked)
        changed = {c: r for c, r in self.rules.items() if r.action != "keep"}
        object.__setattr__(self, "changed", changed)
        object.__setattr__(self, "_hashes", any(r.action == "hash" for r in changed.values()))

    def action(self, column: str) -> str:
        rule = self.rules.get(column)
        return "keep" if rule is None else rule.action

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document: ``{"key_id": ..., "columns": {col: {action, reason}}}``."""
        return {
            "key_id": self.key_id,
            "columns": {c: r.to_dict() for c, r in self.rules.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PiiPolicy:
        """The policy ``to_dict`` wrote; an empty policy for ``None``."""
        if not data:
            return cls({})
        columns = data.get("columns") or {}
        return cls(
            {
                str(c): PiiRule(str(r.get("action", "keep")), str(r.get("reason", "")))
                for c, r in columns.items()
            },
            data.get("key_id"),
        )

    def describe(self) -> list[str]:
        """One line per column: ``name: hashed (name: a first name)``."""
        words = {"hash": "hashed", "mask": "masked", "keep": "kept as given"}
        return [f"{c}: {words.get(r.action, r.action)} ({r.reason})" for c, r in self.rules.items()]

    def _check_key(self, key: PiiKey | None) -> PiiKey | None:
        if not self._hashes:
            return None
        if key is None:
            raise InputError("The PII policy hashes columns but no PII key was given")
        if self.key_id is not None and key.id != self.key_id:
            raise InputError(
                f"The PII policy's hashes were made with key {self.key_id}; this workspace's PII "
                f"key is {key.id} (set FORGEML_PII_KEY or FORGEML_PII_KEY_FILE to the key that "
                "made them)"
            )
        return key

    def apply_frame(self, frame: pd.DataFrame, key: PiiKey | None) -> pd.DataFrame:
        """A copy of ``frame`` with the policy's columns hashed or masked (others untouched).

        Raises:
            InputError: the policy hashes and ``key`` is missing or is not the policy's key.
        """
        import pandas as pd

        changed = [c for c in self.changed if c in frame.columns]
        if not changed:
            return frame
        checked = self._check_key(key)
        out = frame.copy()
        for column in changed:
            values = out[column].astype(object).where(out[column].notna(), None).tolist()
            if self.rules[column].action == "hash":
                assert checked is not None
                replaced = [checked.hash(v) for v in values]
            else:
                replaced = [_mask(v) for v in values]
            out[column] = pd.Series(replaced, index=out.index, dtype=object)
        return out

    def apply_columns(
        self, columns: Mapping[str, list[Any]], key: PiiKey | None
    ) -> dict[str, list[Any]]:
        """``columns`` (name -> values, a request's rows) with the policy applied; the lists
        of columns it does not change are the same objects.

        Raises:
            InputError: the policy hashes and ``key`` is missing or is not the policy's key.
        """
        out = dict(columns)
        checked = False
        for column, rule in self.changed.items():
            values = columns.get(column)
            if values is None:
                continue
            if rule.action == "hash":
                if not checked:
                    self._check_key(key)
                    checked = True
                hash_ = key.hash  # type: ignore[union-attr]
                out[column] = [hash_(v) for v in values]
            else:
                out[column] = [_mask(v) for v in values]
        return out


def _normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def _pattern_of(values: Iterable[Any], only: str | None = None) -> str | None:
    """The description of the pattern most of ``values`` match, if any."""
    texts = [v.strip() for v in values if isinstance(v, str) and v.strip()]
    if not texts:
        return None
    for name, description, matches in _PATTERNS:
        if only is not None and name != only:
            continue
        hits = sum(1 for t in texts if matches(t))
        if hits >= _SHARE * len(texts):
            return description
    return None


def detect_pii(
    frame: pd.DataFrame,
    *,
    declared: Mapping[str, str] | None = None,
    sensitive: Sequence[str] = (),
    skip: Sequence[str] = (),
    default: str = "hash",
) -> dict[str, PiiRule]:
    """The PII rules of a table's columns: declared, then by name, then by values.

    Args:
        frame: the table.
        declared: column -> action the user gave (wins over detection; ``keep`` opts out).
        sensitive: columns declared sensitive: kept (for fairness audits) unless declared or
            detected by name or values.
        skip: columns never detected (the target: its values are the labels).
        default: the action for detected columns.

    Returns:
        Column -> rule, in the table's column order, for columns with a rule.

    Raises:
        InputError: a declared column is not in the table or an action is unknown.
    """
    declared = dict(declared or {})
    columns = [str(c) for c in frame.columns]
    for column, action in declared.items():
        if column not in columns:
            shown = ", ".join(columns[:20])
            raise InputError(f"pii: the column {column!r} is not in the table (columns: {shown})")
        _check_action(action, f"pii.{column}")
    _check_action(default, "pii default")
    rules: dict[str, PiiRule] = {}
    sample = frame.sample(_SAMPLE, random_state=0) if len(frame) > _SAMPLE else frame
    for column in columns:
        if column in declared:
            rules[column] = PiiRule(declared[column], "declared")
            continue
        if column in skip:
            continue
        normalized = _normalized(column)
        hint = _NAME_HINTS.get(normalized)
        if hint is None and normalized.endswith("case_number"):
            hint = "a case record number"
        if hint is not None:
            rules[column] = PiiRule(default, f"name: {hint}")
            continue
        values = sample[column]
        found = None
        if values.dtype == object or str(values.dtype) in ("string", "str"):
            found = _pattern_of(values.dropna().tolist())
        elif values.dtype.kind in "iu":
            # card numbers read from CSV are integers; 13 to 19 digits passing the Luhn
            # check in most rows are card numbers (a random number passes it 1 time in 10)
            found = _pattern_of([str(v) for v in values.dropna().tolist()], only="card")
        if found is not None:
            rules[column] = PiiRule(default, f"values: {found}")
            continue
        if column in sensitive:
            rules[column] = PiiRule(
                "keep", "declared sensitive: kept for fairness audits (pii=hash to hash it)"
            )
    return rules


def _check_action(action: Any, where: str) -> None:
    if action not in PII_ACTIONS:
        raise InputError(f"{where}: the action must be one of hash, mask, keep; got {action!r}")


def parse_pii_options(items: Sequence[str]) -> dict[str, str]:
    """``COLUMN=ACTION`` items (the CLI's ``--pii``) as a mapping.

    Raises:
        InputError: an item is not ``COLUMN=ACTION`` with a known action.
    """
    out: dict[str, str] = {}
    for item in items:
        column, sep, action = str(item).rpartition("=")
        if not sep or not column:
            raise InputError(f"--pii takes COLUMN=ACTION (hash, mask or keep); got {item!r}")
        _check_action(action.strip(), f"--pii {column}")
        out[column.strip()] = action.strip()
    return out


def pii_key(settings: Settings, *, create: bool = True) -> PiiKey | None:
    """The workspace's PII key: ``settings.pii_key``, its file, else ``<home>/pii.key``
    (created with 32 random bytes, mode 0600, when ``create``).

    Raises:
        InputError: the key is not 32 bytes as 64 hex characters or base64.
    """
    from forgeml.store._encryption import load_key

    text = settings.pii_key_value()
    if text is not None:
        return PiiKey(load_key(text))
    path = Path(settings.home) / "pii.key"
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    return PiiKey(load_key(path.read_text(encoding="utf-8").strip().splitlines()[0]))


def apply_pii(
    frame: pd.DataFrame,
    settings: Settings,
    *,
    pii: Mapping[str, str] | None = None,
    pii_default: str = "hash",
    sensitive: Sequence[str] = (),
    target: str | None = None,
    policy: PiiPolicy | None = None,
) -> tuple[pd.DataFrame, PiiPolicy]:
    """A table with its PII policy applied, and the policy: what ``data.add`` stores, what
    ``train`` on a DataFrame trains on, what ``register`` keeps of a sample.

    Fit a model on the returned table when it takes columns the policy hashes: a served model
    gets those columns hashed the same way.

    Args:
        frame: the table, with raw values.
        settings: the workspace's settings (its PII key; created on first use).
        pii: column -> ``hash``, ``mask`` or ``keep`` (declared; wins over detection).
        pii_default: the action for columns detected as PII (by name or values).
        sensitive: columns declared sensitive (kept unless declared or detected).
        target: the label column: never detected, and refused when declared.
        policy: apply this policy (of a dataset or a training) instead of detecting one;
            ``pii`` is then refused.

    Returns:
        The table (a copy when anything changed) and the policy.

    Raises:
        InputError: a declared column is missing, an action is unknown, the target is
            declared, or the key is not the one the policy's hashes were made with.
    """
    if policy is None:
        if target is not None and (pii or {}).get(target, "keep") != "keep":
            raise InputError(
                f"pii: the target {target!r} cannot be hashed or masked: its values are the labels"
            )
        rules = detect_pii(
            frame,
            declared=pii,
            sensitive=sensitive,
            skip=[target] if target is not None else [],
            default=pii_default,
        )
        hashes = any(r.action == "hash" for r in rules.values())
        key = pii_key(settings) if hashes else None
        policy = PiiPolicy(rules, key.id if key is not None else None)
    elif pii:
        raise InputError("pii: this data already carries a PII policy; it cannot be declared again")
    else:
        hashes = any(r.action == "hash" and c in frame.columns for c, r in policy.rules.items())
        key = pii_key(settings) if hashes else None
    return policy.apply_frame(frame, key), policy


def _applied_form(value: Any, action: str) -> bool:
    """Whether ``value`` is what ``action`` leaves: missing, a hash (``hash``), ``"***"``
    (``mask``)."""
    if type(value) is str:
        if action == "hash":
            return len(value) == 20 and _HASHED.match(value) is not None
        return value == MASKED
    if value is None or (isinstance(value, float) and value != value):
        return True
    import pandas as pd

    return bool(pd.isna(value))


def not_applied(
    columns: Mapping[str, Iterable[Any]] | pd.DataFrame, actions: Mapping[str, str]
) -> list[str]:
    """The columns of ``actions`` (column -> ``hash`` or ``mask``) whose values in ``columns``
    are not all what the policy leaves (missing, ``pii_`` + 16 hex digits, ``"***"``): raw
    values the policy was not applied to. Columns absent from ``columns`` are not checked.
    """
    found: list[str] = []
    for column, action in actions.items():
        if column not in columns:
            continue
        values = columns[column]
        if hasattr(values, "to_numpy"):  # a Series: its array (no copy for object columns)
            values = values.to_numpy()
            if len(values) > _UNIQUE_FROM:  # categories repeat: each distinct value once
                import pandas as pd

                values = pd.unique(values)
        if not all(_applied_form(v, action) for v in values):
            found.append(column)
    return found
