"""Tallies kept by the database: statement-level triggers with transition tables that hand each
statement's written rows to an upsert into a table of counts, in the transaction that writes them."""

from __future__ import annotations

from collections.abc import Callable

import pgtrigger


def tally_triggers(*, columns: str, func: Callable[[str], str], on_update: bool = True) -> list[pgtrigger.Trigger]:
    """The triggers that keep a tally of a table: ``func`` takes a query of the statement's rows
    (``columns``, then ``d``: +1 for a row written, -1 for a row removed or replaced) and returns
    the trigger's body. ``on_update=False`` when updates never change what is counted (a trigger
    that refuses such updates keeps it so)."""
    new = f"SELECT {columns}, 1 AS d FROM new_rows"  # noqa: S608 (columns are the models' constants)
    old = f"SELECT {columns}, -1 AS d FROM old_rows"  # noqa: S608
    triggers = [
        pgtrigger.Trigger(
            name="tally_insert",
            when=pgtrigger.After,
            operation=pgtrigger.Insert,
            level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(new="new_rows"),
            func=func(new),
        ),
        pgtrigger.Trigger(
            name="tally_delete",
            when=pgtrigger.After,
            operation=pgtrigger.Delete,
            level=pgtrigger.Statement,
            referencing=pgtrigger.Referencing(old="old_rows"),
            func=func(old),
        ),
    ]
    if on_update:
        triggers.append(
            pgtrigger.Trigger(
                name="tally_update",
                when=pgtrigger.After,
                operation=pgtrigger.Update,
                level=pgtrigger.Statement,
                referencing=pgtrigger.Referencing(old="old_rows", new="new_rows"),
                func=func(f"{new} UNION ALL SELECT {columns}, -1 FROM old_rows"),  # noqa: S608
            )
        )
    return triggers
