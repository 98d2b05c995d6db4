"""Parse run search filters and orderings.

Grammar (keywords case-insensitive)::

    filter  := clause ("and" clause)*
    clause  := field op value | field "is" ["not"] "null"
    field   := ("metrics" | "params" | "tags") "." key | attribute
    key     := name | `quoted name` | "quoted name"
    attribute := status | name | run_id | user | experiment | start_time | end_time
                 | parent_run_id | code_revision        (optionally prefixed "attributes.")
    op      := = | != | < | <= | > | >= | like | ilike | in | not in
    value   := number | 'string' | "string" | "(" value ("," value)* ")"

Examples: ``metrics.auc > 0.8 and params.model = 'lgbm' and status = 'finished'``,
``tags.`team name` in ('a', 'b')``. Ordering: ``["metrics.auc desc", "start_time"]``.

Limits (a filter past them is refused as bad input, before any query): at most
``MAX_CLAUSES`` (100) clauses, ``MAX_IN_VALUES`` (1,000) values in one ``IN`` list and
``MAX_ORDER_TERMS`` (16) ordering terms. Each metric, parameter or tag clause is one correlated
``EXISTS`` in SQL, not a join, so no database's join limit (64 tables on SQLite) applies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from forgeml.errors import InvalidFilterError

__all__ = [
    "ATTRIBUTES",
    "MAX_CLAUSES",
    "MAX_IN_VALUES",
    "MAX_ORDER_TERMS",
    "Clause",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

MAX_CLAUSES = 100
MAX_IN_VALUES = 1000
MAX_ORDER_TERMS = 16

ATTRIBUTES = (
    "status",
    "name",
    "run_id",
    "user",
    "experiment",
    "start_time",
    "end_time",
    "parent_run_id",
    "code_revision",
)
_NUMERIC_ATTRIBUTES = ("start_time", "end_time")
_KINDS = ("metrics", "params", "tags")
_OPS = ("=", "!=", "<", "<=", ">", ">=", "like", "ilike", "in", "not in", "is null", "is not null")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<backtick>`[^`]*`)
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),.])
      | (?P<word>[A-Za-z_][\w\-:/]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Clause:
    """One condition: ``kind`` is metrics, params, tags or attribute."""

    kind: str
    key: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One ordering term."""

    kind: str
    key: str
    descending: bool


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidFilterError(
                f"Cannot read the filter at character {pos + 1}: {text[pos : pos + 20]!r}"
            )
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def _peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self, expected: str) -> _Token:
        token = self._peek()
        if token is None:
            raise InvalidFilterError(f"The filter {self.text!r} ends where {expected} was expected")
        self.i += 1
        return token

    def _error(self, token: _Token, expected: str) -> InvalidFilterError:
        return InvalidFilterError(
            f"Expected {expected} at character {token.pos + 1} of the filter, got {token.text!r}"
        )

    def _word_is(self, token: _Token | None, *words: str) -> bool:
        return token is not None and token.kind == "word" and token.text.lower() in words

    def field(self) -> tuple[str, str]:
        token = self._next("a field such as metrics.auc, params.lr, tags.team or status")
        if token.kind == "backtick":
            raise self._error(token, "metrics., params. or tags. before a quoted key")
        if token.kind != "word":
            raise self._error(token, "a field such as metrics.auc or status")
        head = token.text.lower()
        dot = self._peek()
        if dot is not None and dot.text == ".":
            self.i += 1
            key_token = self._next("a key after the dot")
            if key_token.kind == "backtick" or key_token.kind == "string":
                key = key_token.text[1:-1]
            elif key_token.kind in ("word", "number"):
                key = key_token.text
                # keys may contain dots: metrics.val.auc
                while (p := self._peek()) is not None and p.text == ".":
                    self.i += 1
                    key += "." + self._next("the rest of the key").text
            else:
                raise self._error(key_token, "a key")
            if head in ("attribute", "attributes", "attr"):
                return self._attribute(key, key_token)
            if head in ("metric", "metrics"):
                return "metrics", key
            if head in ("param", "params", "parameter", "parameters"):
                return "params", key
            if head in ("tag", "tags"):
                return "tags", key
            raise self._error(token, "metrics, params, tags or attributes before the dot")
        return self._attribute(token.text, token)

    def _attribute(self, name: str, token: _Token) -> tuple[str, str]:
        if name.lower() not in ATTRIBUTES:
            raise InvalidFilterError(
                f"Unknown field {name!r} in the filter; expected metrics.<key>, params.<key>, "
                f"tags.<key> or one of: {', '.join(ATTRIBUTES)}"
            )
        return "attribute", name.lower()

    def op(self) -> str:
        token = self._next("an operator")
        if token.kind == "op":
            return {"==": "=", "<>": "!="}.get(token.text, token.text)
        if token.kind == "word":
            word = token.text.lower()
            if word in ("like", "ilike", "in"):
                return word
            if word == "not" and self._word_is(self._peek(), "in"):
                self.i += 1
                return "not in"
            if word == "is":
                if self._word_is(self._peek(), "not"):
                    self.i += 1
                    self._expect_word("null")
                    return "is not null"
                self._expect_word("null")
                return "is null"
        raise self._error(token, f"an operator ({', '.join(_OPS)})")

    def _expect_word(self, word: str) -> None:
        token = self._next(word)
        if not self._word_is(token, word):
            raise self._error(token, word)

    def scalar(self) -> Any:
        token = self._next("a value")
        if token.kind == "number":
            number = float(token.text)
            return int(number) if number.is_integer() and "." not in token.text else number
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        raise self._error(token, "a number or a quoted string")

    def value(self, op: str) -> Any:
        if op in ("in", "not in"):
            token = self._next("(")
            if token.text != "(":
                raise self._error(token, "a parenthesised list after IN")
            values = [self.scalar()]
            while (token := self._next(", or )")).text == ",":
                if len(values) == MAX_IN_VALUES:
                    raise InvalidFilterError(
                        f"An IN list holds at most {MAX_IN_VALUES:,} values in a run filter"
                    )
                values.append(self.scalar())
            if token.text != ")":
                raise self._error(token, ", or )")
            return tuple(values)
        return self.scalar()

    def clauses(self) -> list[Clause]:
        if not self.tokens:
            return []
        result = []
        while True:
            kind, key = self.field()
            op = self.op()
            value = None if op in ("is null", "is not null") else self.value(op)
            result.append(_checked(Clause(kind, key, op, value)))
            token = self._peek()
            if token is None:
                return result
            if self._word_is(token, "or"):
                raise InvalidFilterError(
                    "OR is not supported in run filters; run two searches or use IN (...)"
                )
            if not self._word_is(token, "and"):
                raise self._error(token, "AND or the end of the filter")
            if len(result) == MAX_CLAUSES:
                raise InvalidFilterError(
                    f"A run filter has at most {MAX_CLAUSES} clauses; this one has more "
                    f"(about {1 + sum(t.text.lower() == 'and' for t in self.tokens):,})"
                )
            self.i += 1


def _checked(clause: Clause) -> Clause:
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    numeric = all(isinstance(v, int | float) for v in values)
    textual = all(isinstance(v, str) for v in values)
    name = f"{clause.kind}.{clause.key}" if clause.kind != "attribute" else clause.key
    if clause.op in ("is null", "is not null"):
        return clause
    if clause.kind == "metrics" and not numeric:
        raise InvalidFilterError(f"{name} is a metric: compare it with a number, not {values[0]!r}")
    if clause.op in ("like", "ilike") and not textual:
        raise InvalidFilterError(f"{clause.op.upper()} on {name} needs a quoted pattern")
    if clause.kind == "tags" and not textual:
        raise InvalidFilterError(f"{name} is a tag: compare it with a quoted string")
    if clause.kind == "attribute":
        if clause.key in _NUMERIC_ATTRIBUTES and not numeric:
            raise InvalidFilterError(f"{name} is a time in milliseconds: compare it with a number")
        if clause.key not in _NUMERIC_ATTRIBUTES and not textual:
            raise InvalidFilterError(f"{name} is text: compare it with a quoted string")
    if not (numeric or textual):
        raise InvalidFilterError(f"The values compared with {name} mix numbers and strings")
    return clause


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a filter string into clauses joined by AND.

    Raises:
        InvalidFilterError: the filter does not parse; the message says where and why.
    """
    if text is None or not text.strip():
        return []
    return _Parser(text).clauses()


def parse_order_by(terms: Sequence[str] | str | None) -> list[OrderKey]:
    """Parse ordering terms such as ``"metrics.auc desc"`` or ``"start_time asc"``."""
    if terms is None:
        return []
    if isinstance(terms, str):
        terms = [terms]
    if len(terms) > MAX_ORDER_TERMS:
        raise InvalidFilterError(
            f"A run ordering has at most {MAX_ORDER_TERMS} terms; got {len(terms)}"
        )
    keys = []
    for term in terms:
        parser = _Parser(term)
        kind, key = parser.field()
        descending = False
        token = parser._peek()
        if token is not None:
            if not parser._word_is(token, "asc", "desc"):
                raise parser._error(token, "ASC, DESC or the end of the ordering")
            descending = token.text.lower() == "desc"
            parser.i += 1
        if parser._peek() is not None:
            raise parser._error(parser.tokens[parser.i], "the end of the ordering term")
        keys.append(OrderKey(kind, key, descending))
    return keys
