"""bench_http's load through a real gunicorn: every randomisation and every questionnaire submit the
clients send is made once, and the figures are the requests the clients timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.http import gunicorn, health, http_setup, randomise, rows, submit
from followup.models import QuestionnaireResponse
from participants.models import Participant

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_load_randomises_and_submits_each_participant_once_through_gunicorn(tmp_path: Path) -> None:
    setup = http_setup(participants=6)
    assert len(setup.to_randomise) == len(setup.to_submit) == 6
    with gunicorn(workers=2, conn_max_age=0, directory=tmp_path) as (host, port):
        scenarios = [
            health(host=host, port=port, clients=2, seconds=1),
            randomise(host=host, port=port, clients=3, setup=setup),
            submit(host=host, port=port, clients=3, setup=setup),
        ]
    assert [s.errors for s in scenarios] == [[], [], []]
    assert [s.units for s in scenarios][1:] == [6, 6] and scenarios[0].units > 0
    assert Participant.objects.filter(pk__in=setup.to_randomise, status="randomised").count() == 6
    assert QuestionnaireResponse.objects.filter(occurrence_id__in=[pk for _token, pk in setup.to_submit]).count() == 6

    table = {(row["scenario"], row["request"]): row for row in rows(scenarios)}
    assert table[("randomise", "POST randomise")]["count"] == 6
    assert table[("submit", "POST answers")]["count"] == 6
    assert table[("submit", "= 6 submit")]["vs_health"] > 0
    assert all(row["p95_ms"] >= row["p50_ms"] > 0 for row in table.values() if row["p50_ms"] is not None)
