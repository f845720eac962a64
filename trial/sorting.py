"""Sortable staff lists: ``?sort=field`` or ``?sort=-field`` from an allow-list per list.

A list declares the columns it may be sorted by (never one whose value the page hides from the
reader, such as the arm for a blinded role: an order reveals what a column hides). A field not on
the list is not an error: the page keeps its default order and says so; the API answers 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import F, OrderBy, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

# A sortable column: the URL key -> the ORM fields it orders by (ascending), ties broken by pk.
Columns = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Sort:
    key: str  # "" for the list's default order
    descending: bool = False
    refused: str = ""  # the value asked for, when it is not one of the list's columns

    @property
    def param(self) -> str:
        return f"-{self.key}" if self.descending else self.key

    @property
    def message(self) -> str:
        if not self.refused:
            return ""
        return _("This list cannot be sorted by “%(field)s”: it is shown in its usual order.") % {"field": self.refused[:40]}


def sort_parse(value: str | None, *, columns: Columns) -> Sort:
    """The sort a query parameter asks for, if ``columns`` allows it (else the default, refused)."""
    text = (value or "").strip()
    if not text:
        return Sort("")
    key, descending = (text[1:], True) if text.startswith("-") else (text, False)
    if key not in columns:
        return Sort("", refused=text)
    return Sort(key, descending)


def sort_apply(queryset: QuerySet[Any], sort: Sort, *, columns: Columns) -> QuerySet[Any]:
    """The queryset in the order asked for (empty values last either way), or as it was."""
    if not sort.key:
        return queryset
    fields: list[OrderBy] = [
        F(name).desc(nulls_last=True) if sort.descending else F(name).asc(nulls_last=True) for name in columns[sort.key]
    ]
    tie = F("pk").desc() if sort.descending else F("pk").asc()
    return queryset.order_by(*fields, tie)


@dataclass(frozen=True)
class Header:
    """One sortable column header: the link that sorts by it and its ``aria-sort`` state."""

    url: str
    aria_sort: str  # "ascending", "descending" or "" (not sorted by this column)
    label_next: str  # what following the link does, for screen readers


def sort_headers(request: HttpRequest, sort: Sort, *, columns: Columns) -> dict[str, Header]:
    """Each column's header link: this page's filters and search kept, the page number dropped.
    The first click sorts ascending; a click on the sorted column reverses it."""
    query = [(k, v) for k, values in request.GET.lists() for v in values if k not in ("page", "sort", "format")]
    headers = {}
    for key in columns:
        current = sort.key == key
        descending_next = current and not sort.descending
        param = f"-{key}" if descending_next else key
        headers[key] = Header(
            url=f"{request.path}?{urlencode([*query, ('sort', param)])}",
            aria_sort=("descending" if sort.descending else "ascending") if current else "",
            label_next=_("sort descending") if descending_next else _("sort ascending"),
        )
    return headers
