"""The page benchmark at a small size: the trial it builds has follow-up under way, and every page it
measures answers 200 under gunicorn, with its figures in the table."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from bench.pages import TABLE_HEADER, Targets, pages_list, pages_setup

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_every_page_answers_200_with_its_figures_at_60_participants() -> None:
    setup = pages_setup(participants=60, progress=lambda line: None)

    # Follow-up is under way: some questionnaires answered, some open now, some not yet open.
    assert setup.rows["participants_participant"] == 60
    for status in ("completed", "missed", "open", "scheduled"):
        assert setup.rows[f"  occurrences {status}"] > 0, status
    assert setup.rows["followup_message"] > 0 and setup.rows["trial_dataquery"] > 0
    assert setup.rows["participants_participantevent"] == 60  # each row has its audit trail

    out = StringIO()
    call_command("bench_pages", reuse=connection.settings_dict["NAME"], requests=3, warmup=2, stdout=out)

    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == " ".join(TABLE_HEADER).split())
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 2 : -1]]
    expected = [page.name for page in pages_list(Targets(1, 1, "physio", 1, "token"))]
    assert [row[0] for row in rows] == expected
    for page, _role, status, p50, p95, queries, size in rows:
        assert status == "200", page
        assert 0 < float(p50) <= float(p95), page
        assert re.fullmatch(r"\d+(-\d+)?", queries) and int(queries.split("-")[0]) > 0, page
        assert re.fullmatch(r"\d+(-\d+)?", size) and int(size.split("-")[0]) > 0, page
    assert lines[-1].startswith("over 150 ms at p95: ")
