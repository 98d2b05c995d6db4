"""Use cases over datasets: add a table as a version, record a split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.workflows._context import Context, use_case

if TYPE_CHECKING:
    import pandas as pd

    from forgeml.data import DatasetVersion, SplitInfo

__all__ = ["AddedData", "add_data", "split_data"]


@dataclass(frozen=True, slots=True)
class AddedData:
    """The outcome of adding a table.

    Attributes:
        version: the dataset version holding the table.
        created: a new version was written (``False``: identical to ``version``).
    """

    version: DatasetVersion
    created: bool


@use_case("data.write")
def add_data(
    ctx: Context, source: pd.DataFrame | str | Path, *, name: str, **options: Any
) -> AddedData:
    """Add a table (a file or a DataFrame) as the next version of dataset ``name``.

    Args:
        ctx: where and who (recorded as the version's creator).
        source: a CSV or Parquet path, or a DataFrame.
        name: the dataset's name.
        **options: the roles and types ``forgeml.data.add`` takes (``target``, ``time``,
            ``sensitive``, ``id``, ``types``...).

    Returns:
        The version and whether it is new.

    Raises:
        InputError: see ``forgeml.data.add``.
        NotFoundError: no file at the path.
    """
    from forgeml import data

    ws = ctx.workspace
    before = next((d.latest_version for d in data.list_datasets(workspace=ws) if d.name == name), 0)
    version = data.add(source, name=name, workspace=ws, actor=ctx.principal, **options)
    return AddedData(version, version.version > before)


@use_case("data.write")
def split_data(
    ctx: Context,
    ref: str,
    *,
    strategy: str = "auto",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    name: str = "default",
) -> SplitInfo:
    """Draw a reproducible train/validation/test split of a version and record it.

    Raises:
        InputError: see ``forgeml.data.split``.
        ConflictError: another split is recorded under ``name``.
    """
    from forgeml import data

    return data.split(
        ref,
        strategy=strategy,
        fractions=fractions,
        seed=seed,
        name=name,
        workspace=ctx.workspace,
        actor=ctx.principal,
    )
