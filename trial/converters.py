"""URL converters. ``id``: a database id, at most 18 digits, so that no URL can carry a number
PostgreSQL's bigint cannot hold (which would otherwise surface as a 500 instead of a 404)."""

from __future__ import annotations


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
