"""References to versioned things: ``NAME``, ``NAME@VERSION``, ``NAME@ALIAS``, ``NAME@latest``.

One parser for every reference a user types (models, datasets) and every interface that reads
one (CLI, server options, routes, the Python API), so they accept and refuse the same text
with the same message. A name is 1 to N letters, digits, ``.``, ``_`` or ``-`` starting with a
letter or digit; a version is a positive number; an alias is lower-case letters, digits, ``_``
or ``-`` starting with a letter (``latest`` is reserved: the newest version); a bare ``NAME``
means ``NAME@latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forgeml.errors import InputError

__all__ = [
    "LATEST",
    "MAX_VERSION",
    "Ref",
    "check_name",
    "is_version_text",
    "parse_ref",
    "parse_version",
]

LATEST = "latest"
# The largest version number: versions are 32-bit integer columns on every back end, so a
# larger number is refused as bad input instead of overflowing in the database driver.
MAX_VERSION = 2**31 - 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_EXAMPLES = {"model": ("churn@3", "churn@production"), "dataset": ("adult@1", "adult@latest")}


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference. Immutable.

    Attributes:
        name: the model's or dataset's name.
        version: the version number, when the reference gives one.
        alias: the alias, when the reference gives one (``version`` is then ``None``).
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @property
    def latest(self) -> bool:
        """Whether the reference means the newest version."""
        return self.version is None and self.alias is None

    @property
    def selector(self) -> str:
        """What follows the ``@``: the version number, the alias or ``latest``."""
        if self.version is not None:
            return str(self.version)
        return self.alias or LATEST

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def check_name(name: object, *, kind: str = "model", max_length: int = 256) -> str:
    """Validate the name of a ``kind`` (``model``, ``dataset``).

    Raises:
        InputError: not 1 to ``max_length`` letters, digits, ``.``, ``_`` or ``-`` starting
            with a letter or digit.
    """
    if not isinstance(name, str) or len(name) > max_length or not _NAME.match(name):
        raise InputError(
            f"A {kind} name is 1 to {max_length} letters, digits, '.', '_' or '-' starting with "
            f"a letter or digit; got {name!r}"
        )
    return name


def is_version_text(text: str) -> bool:
    """Whether ``text`` is written as a version number (ASCII digits only)."""
    return text.isascii() and text.isdigit()


def parse_version(value: object, *, what: str = "A version") -> int:
    """A version number from ``3``, ``"3"`` or ``" 3 "``.

    Raises:
        InputError: not a whole number from 1 to ``MAX_VERSION``.
    """
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if isinstance(value, bool) or not is_version_text(text) or not 1 <= int(text) <= MAX_VERSION:
        raise InputError(f"{what} is a whole number from 1 to {MAX_VERSION:,}; got {value!r}")
    return int(text)


def parse_ref(
    text: object, *, kind: str = "model", aliases: bool = True, max_name_length: int = 256
) -> Ref:
    """Parse a reference to a version of a ``kind`` (``model``, ``dataset``).

    Args:
        text: ``NAME``, ``NAME@VERSION``, ``NAME@latest`` or, when ``aliases``, ``NAME@ALIAS``.
        kind: what is referred to, named in error messages.
        aliases: whether an alias may stand after the ``@``.
        max_name_length: the longest name accepted.

    Returns:
        the reference.

    Raises:
        InputError: the text is not of that form; the message gives the forms with examples.
    """
    forms = (
        "NAME, NAME@VERSION, NAME@ALIAS or NAME@latest"
        if aliases
        else ("NAME, NAME@VERSION or NAME@latest")
    )
    first, second = _EXAMPLES.get(kind, _EXAMPLES["model"])
    if not isinstance(text, str) or not text.strip() or text.count("@") > 1:
        raise InputError(f"A {kind} reference is {forms} (e.g. {first}, {second}); got {text!r}")
    name, at, selector = text.strip().partition("@")
    check_name(name, kind=kind, max_length=max_name_length)
    if not at or selector == LATEST:
        return Ref(name)
    if is_version_text(selector) and 1 <= int(selector) <= MAX_VERSION:
        return Ref(name, version=int(selector))
    if aliases and _ALIAS.match(selector):
        return Ref(name, alias=selector)
    expected = (
        "a positive number, an alias (lower-case letters, digits, '_' or '-') or 'latest'"
        if aliases
        else "a positive number or 'latest'"
    )
    if is_version_text(selector):
        expected += f"; a version number is at most {MAX_VERSION:,}"
    raise InputError(f"The version in {text!r} must be {expected} (e.g. {name}@1 or {name}@latest)")
