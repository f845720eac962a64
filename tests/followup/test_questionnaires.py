from __future__ import annotations

import datetime as dt
import secrets

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from followup import services
from followup.models import Occurrence, OccurrenceStatus, QuestionnaireResponse
from participants import links
from participants import services as journey
from participants.models import AccessLink
from trial.models import Trial

UTC = dt.UTC
RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
IN_FIRST_WINDOW = dt.datetime(2026, 4, 2, 2, 0, tzinfo=UTC)  # 2 Apr, 12:00 in Sydney: month 1 is open

RECURRENCE = {
    "lbp_any": "yes",
    "ep1_24h": "yes",
    "ep1_more": "no",
    "ep1_start": "2026-03-20",
    "ep1_interference": "2",
    "ep1_pain_avg": "4",
    "ep1_pain_worst": "7",
    "ep1_care_sought": "yes",
    "ep1_care_from": ["gp", "physiotherapist"],
    "ep1_work_days_missed": "2",
    "ep1_recovered_on": "2026-03-28",
    "new_health_problem": "no",
}


@pytest.fixture
def randomised(walkback: Trial, enrol, coordinator, sealed_list):  # type: ignore[no-untyped-def]
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


@pytest.fixture
def link(randomised) -> str:  # type: ignore[no-untyped-def]
    return links.access_link_issue(participant=randomised)


def _first(participant) -> Occurrence:  # type: ignore[no-untyped-def]
    return Occurrence.objects.get(participant=participant, instrument="monthly", month=1)


def test_the_token_has_at_least_128_bits_and_only_its_hash_is_stored(randomised, link: str) -> None:
    assert len(link) >= 43  # 32 random bytes, URL-safe base64
    stored = AccessLink.objects.get(participant=randomised)
    assert stored.token_sha256 != link and link not in stored.token_sha256
    assert links.access_link_participant(token=link) == randomised


def test_a_new_link_revokes_the_old_one(randomised, link: str, client: Client) -> None:
    newer = links.access_link_issue(participant=randomised)
    assert links.access_link_participant(token=link) is None
    assert client.get(f"/p/{link}/").status_code == 410  # gone: see the next test for what it says
    assert client.get(f"/p/{newer}/").status_code == 200


def test_random_tokens_find_nobody(randomised, link: str) -> None:
    assert all(links.access_link_participant(token=secrets.token_urlsafe(32)) is None for _ in range(10_000))


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_the_link_lists_open_questionnaires_and_the_participant_answers_once(randomised, link: str, client: Client) -> None:
    services.occurrences_advance()
    home = client.get(f"/p/{link}/").content.decode()
    first = _first(randomised)
    assert f"/p/{link}/q/{first.pk}/" in home
    page = client.get(f"/p/{link}/q/{first.pk}/", follow=True)  # a step at a time: the first step
    assert page.redirect_chain[-1][0].endswith(f"/q/{first.pk}/step/1/") and "Step 1 of " in page.content.decode()

    response = client.post(f"/p/{link}/q/{first.pk}/", RECURRENCE)
    assert response.status_code == 302 and response["Location"].endswith("/thanks/")
    again = client.post(f"/p/{link}/q/{first.pk}/", {**RECURRENCE, "ep1_pain_avg": "9"})
    assert again.status_code == 302  # straight to the thank-you page: recorded once
    saved = QuestionnaireResponse.objects.get(occurrence=first)
    assert saved.answers["ep1_pain_avg"] == 4 and saved.answers["ep1_care_from"] == ["gp", "physiotherapist"]
    assert saved.source == "participant" and saved.entered_by is None
    first.refresh_from_db()
    assert first.status == OccurrenceStatus.COMPLETED and first.completed_at == IN_FIRST_WINDOW
    assert "Thank you" in client.get(f"/p/{link}/q/{first.pk}/thanks/").content.decode()


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_missing_and_invalid_answers_get_one_clear_message_each_and_nothing_is_saved(
    randomised, link: str, client: Client
) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    response = client.post(f"/p/{link}/q/{first.pk}/", {**RECURRENCE, "ep1_pain_avg": "11", "ep1_start": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="error-ep1_pain_avg"' in html and 'data-testid="error-ep1_start"' in html
    assert html.count('data-testid="error-ep1_pain_avg"') == 1
    assert not QuestionnaireResponse.objects.exclude(occurrence__month=0).exists()  # only the baseline, from enrolment
    assert 'value="7"' in html  # the other answers are kept on the page


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_no_recurrence_skips_the_follow_up_questions(randomised, link: str, client: Client) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    client.post(f"/p/{link}/q/{first.pk}/", {"lbp_any": "no", "new_health_problem": "no", "ep1_pain_avg": "9"})
    saved = QuestionnaireResponse.objects.get(occurrence=first)
    assert saved.answers == {"lbp_any": False, "new_health_problem": False}


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_another_participants_questionnaire_is_not_found(randomised, link: str, enrol, coordinator, client: Client) -> None:
    other = enrol(site="NCL")
    journey.participant_randomise(participant_id=other.pk, by=coordinator)
    theirs = Occurrence.objects.filter(participant=other).first()
    assert client.get(f"/p/{link}/q/{theirs.pk}/").status_code == 404


def test_a_closed_or_cancelled_questionnaire_gets_a_clear_410(randomised, link: str, client: Client, coordinator) -> None:
    first = _first(randomised)
    with time_machine.travel(first.closes_at + dt.timedelta(hours=1), tick=False):
        response = client.get(f"/p/{link}/q/{first.pk}/")
        assert response.status_code == 410 and "closed" in response.content.decode()
        assert client.post(f"/p/{link}/q/{first.pk}/", RECURRENCE).status_code == 410
    assert not QuestionnaireResponse.objects.exclude(occurrence__month=0).exists()  # only the baseline, from enrolment


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_staff_enter_answers_on_the_participants_behalf_recorded_as_such(randomised, coordinator) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    result = services.response_submit(occurrence=first, raw=RECURRENCE, source="staff", by=coordinator)
    assert result.created and result.response.entered_by == coordinator and result.response.source == "staff"
    from participants.blinding import record_history

    history = record_history(obj=result.response, user=coordinator, trial=randomised.site.trial)
    assert "for WB-SYD" in history[0].who


def test_scores_are_computed_and_stored_with_the_answers(randomised, link: str, client: Client) -> None:
    timepoint = Occurrence.objects.get(participant=randomised, instrument="timepoint", month=3)
    version = services.instrument_for(occurrence=timepoint)
    answers = {item["code"]: "no" for item in version.definition["items"] if item["type"] == "yes_no"}
    answers.update({f"rmdq_{n:02d}": "yes" for n in range(1, 6)})
    for item in version.definition["items"]:
        if item["type"] == "choice":
            answers[item["code"]] = str(item["choices"][1][0])
        elif item["type"] in ("integer", "number"):
            answers[item["code"]] = str(item.get("min", 0) + 1)
    with time_machine.travel(timepoint.opens_at + dt.timedelta(hours=1), tick=False):
        services.occurrences_advance()
        result = services.response_submit(occurrence=timepoint, raw=answers, source="participant")
    assert result.response.scores["rmdq_total"] == 5
    assert result.response.scores["eq5d_profile"] == "22222"


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_access_link_and_responses_api(randomised, coordinator, make_staff) -> None:
    services.occurrences_advance()
    api = APIClient()
    api.force_authenticate(coordinator)
    url = api.post(f"/api/v1/participants/{randomised.pk}/access-link/").json()["url"]
    assert url.startswith("http://testserver/p/")
    services.response_submit(occurrence=_first(randomised), raw=RECURRENCE, source="participant")
    rows = api.get(f"/api/v1/participants/{randomised.pk}/responses/").json()
    assert [row["instrument"] for row in rows] == ["baseline", "monthly"]  # the baseline, entered at enrolment
    assert rows[1]["answers"]["ep1_interference"] == 2
    blinded = APIClient()
    blinded.force_authenticate(make_staff("statistician"))
    assert blinded.post(f"/api/v1/participants/{randomised.pk}/access-link/").status_code == 403


def test_a_coordinator_issues_a_link_from_the_participant_page(client: Client, randomised, coordinator, make_staff) -> None:
    client.force_login(coordinator)
    page = client.get(f"/participants/{randomised.pk}/").content.decode()
    assert 'data-testid="issue-link"' in page and 'data-testid="schedule"' in page
    # The button asks first: every message already sent carries the current link.
    ask = client.get(f"/participants/{randomised.pk}/access-link/").content.decode()
    assert "stops working at once" in ask and 'data-testid="confirm-issue-link"' in ask
    assert not AccessLink.objects.filter(participant=randomised).exists()  # asking changed nothing
    response = client.post(f"/participants/{randomised.pk}/access-link/", follow=True)
    assert "New personal link" in response.content.decode()
    assert AccessLink.objects.filter(participant=randomised, revoked_at__isnull=True).count() == 1
    client.force_login(make_staff("data_manager"))
    assert client.post(f"/participants/{randomised.pk}/access-link/").status_code == 403


@time_machine.travel(IN_FIRST_WINDOW, tick=False)
def test_an_occurrence_with_no_published_questionnaire_is_a_clear_404(randomised, link: str, client: Client) -> None:
    services.occurrences_advance()
    first = _first(randomised)
    Occurrence.objects.filter(pk=first.pk).update(instrument="unpublished")
    response = client.get(f"/p/{link}/q/{first.pk}/")
    assert response.status_code == 404


def test_an_old_link_tells_the_participant_it_was_replaced_and_what_to_do(
    randomised, link: str, coordinator, client: Client
) -> None:
    newer = links.access_link_issue(participant=randomised, by=coordinator)
    old = client.get(f"/p/{link}/")
    html = old.content.decode()
    assert old.status_code == 410 and 'data-testid="link-not-valid"' in html
    assert "has been replaced" in html and randomised.site.name in html and randomised.site.trial.name in html
    assert "dashboard" not in html.lower() and "Not found" not in html  # not the staff page
    assert client.get(f"/p/{newer}/").status_code == 200
    unknown = client.get("/p/not-a-real-link/")
    assert unknown.status_code == 404 and "This link does not work" in unknown.content.decode()
