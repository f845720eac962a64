"""Sortable staff lists: an allow-list per list, ``aria-sort`` on the sorted header, filters kept
in the links, and a field not on the list answered with the usual order and a message (never a 500)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import reverse

from closeout.queries.selectors import QUERY_SORTS
from participants.selectors import SCREENING_SORTS
from safety.selectors import EVENT_SORTS
from trial import sorting
from trial.models import Trial
from trial.selectors import SECURITY_EVENT_SORTS

COLUMNS = {"name": ("username",), "when": ("created_at",)}


@pytest.mark.parametrize(
    ("asked", "key", "descending", "refused"),
    [
        ("", "", False, ""),
        ("name", "name", False, ""),
        ("-when", "when", True, ""),
        ("--when", "", False, "--when"),
        ("password", "", False, "password"),
        ("-", "", False, "-"),
        ("name;drop table", "", False, "name;drop table"),
    ],
)
def test_a_sort_is_taken_only_from_the_allow_list(asked: str, key: str, descending: bool, refused: str) -> None:
    sort = sorting.sort_parse(asked, columns=COLUMNS)
    assert (sort.key, sort.descending, sort.refused) == (key, descending, refused)
    assert bool(sort.message) == bool(refused)


def test_header_links_keep_the_filters_drop_the_page_and_reverse_the_sorted_column() -> None:
    request = RequestFactory().get("/audit/", {"kind": "login", "page": "3", "sort": "name"})
    headers = sorting.sort_headers(request, sorting.sort_parse("name", columns=COLUMNS), columns=COLUMNS)
    assert headers["name"].url == "/audit/?kind=login&sort=-name" and headers["name"].aria_sort == "ascending"
    assert headers["when"].url == "/audit/?kind=login&sort=when" and headers["when"].aria_sort == ""


def test_lists_never_offer_a_column_a_blinded_reader_cannot_see() -> None:
    assert not {"source", "reported_by", "recorded_by", "reporting"} & set(EVENT_SORTS)
    assert not {"record", "field", "question", "text", "check"} & set(QUERY_SORTS)
    assert "arm" not in SCREENING_SORTS


LISTS = [
    ("screening-log", SCREENING_SORTS),
    ("adverse-event-list", EVENT_SORTS),
    ("query-list", QUERY_SORTS),
    ("audit-log", SECURITY_EVENT_SORTS),
]


@pytest.mark.parametrize(("name", "columns"), LISTS)
def test_every_staff_list_sorts_each_offered_column_and_refuses_others_politely(
    client: Any, walkback: Trial, make_staff: Any, name: str, columns: dict[str, Any]
) -> None:
    client.force_login(make_staff("investigator"))
    url = reverse(name)
    for key in columns:
        for asked in (key, f"-{key}"):
            response = client.get(url, {"sort": asked})
            assert response.status_code == 200, asked
            html = response.content.decode()
            state = "descending" if asked.startswith("-") else "ascending"
            assert f'aria-sort="{state}"' in html.split(f'data-testid="sort-{key}"')[0].rsplit("<th", 1)[1]
            assert 'data-testid="sort-refused"' not in html
    for asked in ("arm", "source", "-pk", "x" * 500):
        response = client.get(url, {"sort": asked})
        assert response.status_code == 200
        assert 'data-testid="sort-refused"' in response.content.decode() and "aria-sort" not in response.content.decode()
        assert client.get(url, {"sort": asked, "format": "csv"}).status_code == 200
