"""Lists as CSV downloads: the same URL as the page with ``?format=csv``, so a download has the
page's filters, permissions and blinding by construction, every row rather than one page."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

CHUNK = 1000
# A cell a spreadsheet would run as a formula ("=HYPERLINK(...)"): written with a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: HttpRequest) -> bool:
    return request.GET.get("format") == "csv"


def csv_url(request: HttpRequest) -> str:
    """This page's URL with its filters, as a CSV download (the page number left out)."""
    query = [(k, v) for k, values in request.GET.lists() for v in values if k not in ("page", "format")]
    return f"{request.path}?{urlencode([*query, ('format', 'csv')])}"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for number, row in enumerate(rows, start=1):
        writer.writerow([_cell(value) for value in row])
        if number % CHUNK == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def in_chunks(queryset: Any, rows: Callable[[list[Any]], Iterable[Sequence[Any]]]) -> Iterator[Sequence[Any]]:
    """``rows(batch)`` for the queryset a thousand records at a time: per-batch lookups (blinding,
    labels) stay a constant number of queries per thousand rows, and memory stays bounded."""
    batch: list[Any] = []
    for record in queryset.iterator(chunk_size=CHUNK):
        batch.append(record)
        if len(batch) == CHUNK:
            yield from rows(batch)
            batch = []
    if batch:
        yield from rows(batch)


def csv_download(*, name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.localdate().isoformat()}.csv"'
    return response
