"""The one shape of the project's record tables (norms, tasks, experiments, the form's fields)."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Keyed(Protocol):
    key: str


R = TypeVar("R", bound=Keyed)


def by_key(*records: R) -> dict[str, R]:
    """The records by their ``key``, in the order given (menus, legends and titles follow it); two
    records with one key are a mistake, refused here."""
    table = {r.key: r for r in records}
    if len(table) != len(records):
        raise ValueError(f"two records share a key: {[r.key for r in records]}")
    return table
