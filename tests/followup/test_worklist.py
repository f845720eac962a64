"""The staff's follow-up pages: the worklist, calls, answers entered on a participant's behalf,
and the calls and messages on the participant page."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from followup import selectors, services
from followup.models import CallLog, Occurrence, OccurrenceStatus, OutcomeSummary, QuestionnaireResponse, ResponseSource
from messaging.models import Message, MessagePolicy, MessageStatus
from participants import services as journey
from participants.blinding import record_history
from participants.models import Participant
from trial import access
from trial.access import Perm
from trial.errors import ApplicationError, NotAllowed
from trial.models import RoleCode, Trial

UTC = dt.UTC
# 15 Sep 2026, 12:00 in Sydney (UTC+10: daylight saving starts on 4 Oct).
NOW = dt.datetime(2026, 9, 15, 2, 0, tzinfo=UTC)

RECURRENCE = {
    "lbp_any": "yes",
    "ep1_24h": "yes",
    "ep1_more": "no",
    "ep1_start": "2026-09-01",
    "ep1_interference": "2",
    "ep1_pain_avg": "4",
    "ep1_pain_worst": "7",
    "ep1_care_sought": "yes",
    "ep1_care_from": ["gp", "physiotherapist"],
    "ep1_work_days_missed": "2",
    "ep1_recovered_on": "2026-09-10",
    "new_health_problem": "no",
}


def _randomised(enrol: Any, coordinator: Any, on: dt.date, site: str = "SYD") -> Participant:
    """A participant randomised at 11:00 Sydney time on ``on``: monthly questionnaires are due on
    the same day of each later month, open 3 days before and close 14 days after."""
    with time_machine.travel(dt.datetime.combine(on, dt.time(1, 0), tzinfo=UTC), tick=False):
        participant = enrol(site=site)
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    participant.refresh_from_db()
    return participant


def _monthly(participant: Participant, month: int) -> Occurrence:
    return Occurrence.objects.get(participant=participant, instrument="monthly", month=month)


def _section(html: str, name: str) -> str:
    return html.split(f'data-testid="section-{name}"')[1].split("</table>")[0]


def _text(response: Any) -> str:
    return response.content.decode()


def _failed_message(participant: Participant, occurrence: Occurrence | None, *, planned_at: dt.datetime, error: str) -> Message:
    return Message.objects.create(
        participant=participant,
        occurrence=occurrence,
        step="invitation",
        channel="email",
        planned_at=planned_at,
        due_at=planned_at,
        status=MessageStatus.FAILED,
        attempts=5,
        last_error=error,
    )


@pytest.fixture
def cohort(walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any) -> dict[str, Participant]:
    """Participants in every situation the worklist knows, as of ``NOW``."""
    people = {
        "due": _randomised(enrol, coordinator, dt.date(2026, 8, 15)),  # month 1 due today
        "overdue": _randomised(enrol, coordinator, dt.date(2026, 8, 10)),  # month 1 due 5 days ago, closes 25 Sep
        "closing": _randomised(enrol, coordinator, dt.date(2026, 8, 2)),  # month 1 due 2 Sep, closes at the end of 16 Sep
        "lost": _randomised(enrol, coordinator, dt.date(2026, 5, 1)),  # months 1-3 missed, month 4 closing
        "answered_between": _randomised(enrol, coordinator, dt.date(2026, 5, 1)),  # month 2 answered
        "withdrawn": _randomised(enrol, coordinator, dt.date(2026, 5, 1)),  # months 1-3 missed, then withdrew
        "elsewhere": _randomised(enrol, coordinator, dt.date(2026, 8, 10), site="BNE"),
    }
    month_2 = _monthly(people["answered_between"], 2)
    with time_machine.travel(month_2.opens_at + dt.timedelta(days=1), tick=False):
        services.occurrences_advance()
        services.response_submit(occurrence=month_2, raw=RECURRENCE, source=ResponseSource.PARTICIPANT)
    services.occurrences_advance(now=NOW)
    with time_machine.travel(NOW, tick=False):
        journey.participant_withdraw(participant=people["withdrawn"], scope="followup", reason="Moved away", by=coordinator)
    return people


# --- Access -------------------------------------------------------------------------------


def test_a_coordinator_opens_the_worklist_of_their_own_site_only(client: Client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get(reverse("followup-worklist")).status_code == 200
    assert client.get(reverse("followup-worklist"), {"site": "SYD"}).status_code == 200
    assert client.get(reverse("followup-worklist"), {"site": "BNE"}).status_code == 404
    assert client.get(reverse("followup-worklist"), {"site": "NOPE"}).status_code == 404


@pytest.mark.parametrize("role", ["statistician", "investigator", "data_manager", "admin"])
def test_roles_without_enter_followup_are_refused_the_worklist(client: Client, walkback: Trial, make_staff, role: str) -> None:
    client.force_login(make_staff(role))
    assert client.get(reverse("followup-worklist")).status_code == 403


def test_a_physiotherapist_is_refused_and_an_anonymous_visitor_is_sent_to_log_in(
    client: Client, walkback: Trial, make_staff
) -> None:
    assert client.get(reverse("followup-worklist"))["Location"].startswith(reverse("login"))
    client.force_login(make_staff("physiotherapist", sites=["SYD"]))
    assert client.get(reverse("followup-worklist")).status_code == 403


@pytest.mark.parametrize(("role", "sites", "sees_link"), [("coordinator", ["SYD"], True), ("statistician", [], False)])
def test_the_navigation_offers_the_worklist_to_roles_that_enter_follow_up(
    client: Client, make_staff, role: str, sites: list[str], sees_link: bool
) -> None:
    client.force_login(make_staff(role, sites=sites))
    nav = _text(client.get(reverse("dashboard"))).split('id="mainnav"')[1].split("</ul>")[0]
    assert (f'href="{reverse("followup-worklist")}">Worklist</a>' in nav) is sees_link


# --- Sections -----------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_each_open_questionnaire_is_in_its_most_urgent_section(client: Client, cohort, coordinator) -> None:
    client.force_login(coordinator)
    html = _text(client.get(reverse("followup-worklist")))
    closing, overdue, due = _section(html, "closing-soon"), _section(html, "overdue"), _section(html, "due-now")
    ids = {name: p.study_id for name, p in cohort.items()}

    assert ids["due"] in due and ids["due"] not in overdue + closing
    assert ids["overdue"] in overdue and ids["overdue"] not in due + closing
    assert ids["closing"] in closing and ids["closing"] not in due + overdue
    assert ids["lost"] in closing  # its month 4 closes at the end of 16 Sep
    assert ids["withdrawn"] not in html  # withdrawn from follow-up: its questionnaires were cancelled

    work = selectors.worklist_get(user=coordinator, trial=cohort["due"].site.trial)
    days = {i.participant.study_id: i.days_overdue for i in work.overdue + work.closing_soon + work.due_now}
    assert days[ids["due"]] == 0 and days[ids["overdue"]] == 5 and days[ids["closing"]] == 13
    last_day = {i.participant.study_id: i.last_day for i in work.closing_soon}
    assert last_day[ids["closing"]] == dt.date(2026, 9, 16)


@time_machine.travel(NOW, tick=False)
def test_closing_soon_follows_the_trials_policy(client: Client, cohort, coordinator) -> None:
    trial = cohort["due"].site.trial
    MessagePolicy.objects.update_or_create(trial=trial, defaults={"closing_soon_days": 12})
    work = selectors.worklist_get(user=coordinator, trial=trial)
    closing = {i.participant.study_id for i in work.closing_soon}
    assert cohort["overdue"].study_id in closing  # closes in 9 days and a half
    assert cohort["due"].study_id not in closing  # closes in 14 days and a half


@time_machine.travel(NOW, tick=False)
def test_the_site_filter_and_site_scope(client: Client, cohort, make_staff, coordinator) -> None:
    client.force_login(coordinator)  # works at SYD, NCL and BNE
    everything = _text(client.get(reverse("followup-worklist")))
    assert cohort["elsewhere"].study_id in everything
    only_syd = _text(client.get(reverse("followup-worklist"), {"site": "SYD"}))
    assert cohort["elsewhere"].study_id not in only_syd and cohort["overdue"].study_id in only_syd
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert cohort["elsewhere"].study_id not in _text(client.get(reverse("followup-worklist")))


@time_machine.travel(NOW, tick=False)
def test_three_missed_in_a_row_flag_a_participant_but_an_answer_in_between_does_not(client: Client, cohort, coordinator) -> None:
    client.force_login(coordinator)
    lost = _section(_text(client.get(reverse("followup-worklist"))), "lost")
    assert cohort["lost"].study_id in lost
    row = lost.split(f'data-testid="row-{cohort["lost"].study_id}"')[1].split("</tr>")[0]
    assert 'data-testid="missed-in-a-row">3<' in row and "Monthly month 3" in row
    assert cohort["answered_between"].study_id not in lost  # missed, answered, missed
    assert cohort["withdrawn"].study_id not in lost  # withdrawn from follow-up
    assert cohort["due"].study_id not in lost


@time_machine.travel(NOW, tick=False)
def test_the_lost_to_follow_up_rule_uses_the_policys_count_and_only_closed_monthly_questionnaires(cohort, coordinator) -> None:
    trial = cohort["due"].site.trial
    flagged = {p.study_id for p in selectors.lost_to_followup_list(user=coordinator, trial=trial, missed=4)}
    assert cohort["lost"].study_id not in flagged  # month 4 is still open: not missed yet
    MessagePolicy.objects.update_or_create(trial=trial, defaults={"lost_to_followup_missed": 1})
    flagged = {p.study_id for p in selectors.lost_to_followup_list(user=coordinator, trial=trial)}
    assert {cohort["lost"].study_id, cohort["answered_between"].study_id} <= flagged
    assert cohort["due"].study_id not in flagged  # nothing closed yet


@time_machine.travel(NOW, tick=False)
def test_failed_messages_are_listed_with_their_error(client: Client, cohort, coordinator) -> None:
    recent = _failed_message(
        cohort["overdue"],
        _monthly(cohort["overdue"], 1),
        planned_at=NOW - dt.timedelta(days=2),
        error="SMTP 550: mailbox unknown",
    )
    _failed_message(cohort["due"], None, planned_at=NOW - dt.timedelta(days=45), error="An old failure")
    client.force_login(coordinator)
    failed = _section(_text(client.get(reverse("followup-worklist"))), "failed")
    assert cohort["overdue"].study_id in failed and "SMTP 550: mailbox unknown" in failed
    assert "An old failure" not in failed
    assert recent.get_channel_display() in failed


@time_machine.travel(NOW, tick=False)
def test_contact_details_show_only_to_roles_that_may_see_them(client: Client, cohort, coordinator, monkeypatch) -> None:
    _failed_message(
        cohort["overdue"], None, planned_at=NOW - dt.timedelta(days=1), error="Refused: pat@example.org does not exist"
    )
    client.force_login(coordinator)
    html = _text(client.get(reverse("followup-worklist")))
    assert 'href="tel:+61400000000"' in html and 'href="mailto:pat@example.org"' in html

    without = access.ROLE_PERMISSIONS[RoleCode.COORDINATOR] - {Perm.VIEW_CONTACTS}
    monkeypatch.setitem(access.ROLE_PERMISSIONS, RoleCode.COORDINATOR, without)
    html = _text(client.get(reverse("followup-worklist")))
    assert cohort["overdue"].study_id in html
    assert "pat@example.org" not in html and "+61400000000" not in html


# --- Calls --------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_call_recorded_from_the_worklist_is_audited_and_shown_as_the_last_call(client: Client, cohort, coordinator) -> None:
    participant = cohort["overdue"]
    occurrence = _monthly(participant, 1)
    client.force_login(coordinator)
    worklist = reverse("followup-worklist") + "?site=SYD"
    response = client.post(
        reverse("followup-call-record", args=[participant.pk]),
        {"outcome": "no_answer", "note": "Rang twice", "occurrence": occurrence.pk, "next": worklist},
    )
    assert response.status_code == 302 and response["Location"] == worklist

    call = CallLog.objects.get(participant=participant)
    assert (call.outcome, call.note, call.occurrence, call.called_by, call.called_at) == (
        "no_answer",
        "Rang twice",
        occurrence,
        coordinator,
        NOW,
    )
    history = record_history(obj=call, user=coordinator, trial=participant.site.trial)
    assert history[0].reason == "Follow-up call: No answer" and history[0].who == coordinator.username

    row = _section(_text(client.get(worklist)), "overdue").split(f'data-testid="row-{participant.study_id}"')[1]
    assert '<span data-testid="last-call">No answer</span>' in row.split("</tr>")[0]


@time_machine.travel(NOW, tick=False)
def test_the_call_page_records_a_call_and_returns_to_the_participant(client: Client, cohort, coordinator) -> None:
    participant = cohort["lost"]
    client.force_login(coordinator)
    page = _text(client.get(reverse("followup-call-record", args=[participant.pk])))
    assert 'data-testid="call-form"' in page and "+61400000000" in page
    response = client.post(
        reverse("followup-call-record", args=[participant.pk]), {"outcome": "message_left", "next": "https://elsewhere.example/"}
    )
    # Back to the participant: a ``next`` off this site is ignored.
    assert response.status_code == 302 and response["Location"] == reverse("participant-detail", args=[participant.pk])
    assert CallLog.objects.get(participant=participant).occurrence is None


@time_machine.travel(NOW, tick=False)
def test_a_call_without_an_outcome_or_about_another_participants_questionnaire_is_refused(
    client: Client, cohort, coordinator
) -> None:
    participant, other = cohort["overdue"], cohort["due"]
    client.force_login(coordinator)
    url = reverse("followup-call-record", args=[participant.pk])
    assert "Choose the outcome of the call." in _text(client.post(url, {"outcome": ""}))
    theirs = _monthly(other, 1).pk
    assert "Choose one of this participant" in _text(client.post(url, {"outcome": "reached", "occurrence": theirs}))
    with pytest.raises(ApplicationError, match="not this participant's"):
        services.call_log_record(
            participant=participant, occurrence=_monthly(other, 1), outcome="reached", note="", by=coordinator
        )
    with pytest.raises(ApplicationError):
        services.call_log_record(participant=participant, outcome="shouted", note="", by=coordinator)
    assert not CallLog.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_calls_are_refused_to_other_roles_sites_and_withdrawn_participants(client: Client, cohort, make_staff) -> None:
    syd_only = make_staff("coordinator", sites=["SYD"])
    client.force_login(syd_only)
    assert client.get(reverse("followup-call-record", args=[cohort["elsewhere"].pk])).status_code == 404
    with pytest.raises(NotAllowed):
        services.call_log_record(participant=cohort["elsewhere"], outcome="reached", note="", by=syd_only)
    statistician = make_staff("statistician")
    client.force_login(statistician)
    assert client.post(reverse("followup-call-record", args=[cohort["due"].pk]), {"outcome": "reached"}).status_code == 403
    with pytest.raises(NotAllowed):
        services.call_log_record(participant=cohort["due"], outcome="reached", note="", by=statistician)
    with pytest.raises(ApplicationError, match="withdrawn from follow-up"):
        services.call_log_record(participant=cohort["withdrawn"], outcome="reached", note="", by=syd_only)
    assert not CallLog.objects.exists()


# --- Answers entered on a participant's behalf ----------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_staff_entry_records_the_answers_as_staff_entry_and_the_participant_page_shows_it(
    client: Client, cohort, coordinator
) -> None:
    participant = cohort["overdue"]
    occurrence = _monthly(participant, 1)
    url = reverse("followup-staff-entry", args=[participant.pk, occurrence.pk])
    client.force_login(coordinator)
    detail = _text(client.get(reverse("participant-detail", args=[participant.pk])))
    assert f'data-testid="enter-{occurrence.pk}"' in detail and url in detail
    assert url in _section(_text(client.get(reverse("followup-worklist"))), "overdue")

    page = _text(client.get(url))
    assert 'data-testid="staff-entry-notice"' in page and 'data-testid="late-notice"' not in page
    assert 'name="ep1_pain_avg"' in page

    response = client.post(url, RECURRENCE)
    assert response.status_code == 302 and response["Location"] == reverse("participant-detail", args=[participant.pk])
    saved = QuestionnaireResponse.objects.get(occurrence=occurrence)
    assert saved.source == ResponseSource.STAFF and saved.entered_by == coordinator and saved.answers["ep1_pain_avg"] == 4
    occurrence.refresh_from_db()
    assert occurrence.status == OccurrenceStatus.COMPLETED

    detail = _text(client.get(reverse("participant-detail", args=[participant.pk])))
    assert f"(entered by staff: {coordinator.username})" in detail.split(f'data-testid="response-{occurrence.pk}"')[1]
    assert f'data-testid="enter-{occurrence.pk}"' not in detail
    assert participant.study_id not in _section(_text(client.get(reverse("followup-worklist"))), "overdue")


@time_machine.travel(NOW, tick=False)
def test_staff_entry_with_invalid_answers_shows_the_errors_and_saves_nothing(client: Client, cohort, coordinator) -> None:
    participant = cohort["due"]
    url = reverse("followup-staff-entry", args=[participant.pk, _monthly(participant, 1).pk])
    client.force_login(coordinator)
    response = client.post(url, {**RECURRENCE, "ep1_pain_avg": "11"})
    assert response.status_code == 400 and 'data-testid="error-ep1_pain_avg"' in _text(response)
    assert not QuestionnaireResponse.objects.filter(occurrence__participant=participant).exclude(occurrence__month=0).exists()


@time_machine.travel(NOW, tick=False)
def test_staff_enter_a_missed_questionnaire_late(client: Client, cohort, coordinator) -> None:
    participant = cohort["lost"]
    missed = _monthly(participant, 3)
    assert missed.status == OccurrenceStatus.MISSED
    url = reverse("followup-staff-entry", args=[participant.pk, missed.pk])
    client.force_login(coordinator)
    assert 'data-testid="late-notice"' in _text(client.get(url))
    assert client.post(url, RECURRENCE).status_code == 302
    assert QuestionnaireResponse.objects.get(occurrence=missed).source == ResponseSource.STAFF
    # Now answered in between: no longer three missed in a row.
    assert participant.study_id not in _section(_text(client.get(reverse("followup-worklist"))), "lost")


@time_machine.travel(NOW, tick=False)
def test_staff_entry_explains_completed_cancelled_and_not_yet_open_questionnaires(client: Client, cohort, coordinator) -> None:
    client.force_login(coordinator)

    def entry(participant: Participant, occurrence: Occurrence) -> Any:
        return client.get(reverse("followup-staff-entry", args=[participant.pk, occurrence.pk]))

    completed = entry(cohort["answered_between"], _monthly(cohort["answered_between"], 2))
    assert completed.status_code == 409 and "already answered" in _text(completed)
    assert "participant (personal link)" in _text(completed)
    cancelled = entry(cohort["withdrawn"], _monthly(cohort["withdrawn"], 4))
    assert cancelled.status_code == 410 and "was cancelled: Withdrawn from follow-up" in _text(cancelled)
    future = entry(cohort["due"], _monthly(cohort["due"], 2))
    assert future.status_code == 409 and "not open yet: it opens on 12 Oct 2026" in _text(future)
    assert (
        client.post(
            reverse("followup-staff-entry", args=[cohort["due"].pk, _monthly(cohort["due"], 2).pk]), RECURRENCE
        ).status_code
        == 409
    )
    assert QuestionnaireResponse.objects.exclude(occurrence__month=0).count() == 1  # the participant's own, made by the fixture


@time_machine.travel(NOW, tick=False)
def test_staff_entry_is_site_scoped_and_needs_enter_followup(client: Client, cohort, make_staff) -> None:
    elsewhere = cohort["elsewhere"]
    url = reverse("followup-staff-entry", args=[elsewhere.pk, _monthly(elsewhere, 1).pk])
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get(url).status_code == 404
    assert client.post(url, RECURRENCE).status_code == 404
    mismatched = reverse("followup-staff-entry", args=[cohort["due"].pk, _monthly(cohort["overdue"], 1).pk])
    assert client.get(mismatched).status_code == 404
    client.force_login(make_staff("statistician"))
    assert client.get(url).status_code == 403
    client.force_login(make_staff("investigator"))
    assert client.post(url, RECURRENCE).status_code == 403
    assert not QuestionnaireResponse.objects.filter(source=ResponseSource.STAFF).exclude(occurrence__month=0).exists()


# --- The participant page -------------------------------------------------------------------


def _messages_for(participant: Participant, count: int) -> None:
    occurrences = list(Occurrence.objects.filter(participant=participant).order_by("due_date")[:count])
    for n, occurrence in enumerate(occurrences):
        status = [MessageStatus.SENT, MessageStatus.CANCELLED, MessageStatus.FAILED][n % 3]
        Message.objects.create(
            participant=participant,
            occurrence=occurrence,
            step="invitation",
            channel="sms",
            planned_at=occurrence.opens_at,
            due_at=occurrence.opens_at,
            status=status,
            sent_at=occurrence.opens_at if status == MessageStatus.SENT else None,
            cancelled_reason="Questionnaire completed" if status == MessageStatus.CANCELLED else "",
            last_error="Provider refused +61400000000" if status == MessageStatus.FAILED else "",
        )


@time_machine.travel(NOW, tick=False)
def test_the_participant_page_lists_messages_and_calls(client: Client, cohort, coordinator, make_staff) -> None:
    participant = cohort["overdue"]
    _messages_for(participant, 3)
    services.call_log_record(participant=participant, outcome="reached", note="Will do it tonight", by=coordinator)
    client.force_login(coordinator)
    html = _text(client.get(reverse("participant-detail", args=[participant.pk])))
    table = html.split('data-testid="messages"')[1].split("</table>")[0]
    assert table.count("<tr>") == 4  # a header and three messages
    assert "Sent" in table and "Questionnaire completed" in table and "Provider refused +61400000000" in table
    calls = html.split('data-testid="calls"')[1].split("</ul>")[0]
    assert "Reached: will complete it" in calls and "Will do it tonight" in calls
    assert 'data-testid="record-call"' in html

    client.force_login(make_staff("investigator"))
    html = _text(client.get(reverse("participant-detail", args=[participant.pk])))
    table = html.split('data-testid="messages"')[1].split("</table>")[0]
    assert "Failed" in table and "+61400000000" not in html  # the error may name the address
    assert 'data-testid="record-call"' not in html and 'data-testid="enter-' not in html


# --- Query counts ---------------------------------------------------------------------------


def _grow(enrol: Any, coordinator: Any, count: int, start: int) -> None:
    """Participants each in a worklist section, lost to follow-up, with a failed message and a call."""
    days = (dt.date(2026, 5, 1), dt.date(2026, 5, 10), dt.date(2026, 5, 15))  # month 4: closing, overdue, due now
    for n in range(start, start + count):
        participant = _randomised(enrol, coordinator, days[n % 3])
        services.occurrences_advance(now=NOW)
        _failed_message(participant, _monthly(participant, 4), planned_at=NOW - dt.timedelta(days=1), error="Bounced")
        services.call_log_record(participant=participant, outcome="no_answer", note="", by=coordinator, now=NOW)


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_worklist_keeps_its_query_count_as_rows_grow(
    client: Client, walkback: Trial, enrol, coordinator, sealed_list
) -> None:
    client.force_login(coordinator)
    _grow(enrol, coordinator, 3, 0)
    with time_machine.travel(NOW, tick=False):
        few = _queries(client, reverse("followup-worklist"))
        work = selectors.worklist_get(user=coordinator, trial=walkback)
        assert (len(work.closing_soon), len(work.overdue), len(work.due_now)) == (1, 1, 1)
        assert (len(work.lost_to_followup), len(work.failed_messages)) == (3, 3)
    _grow(enrol, coordinator, 12, 3)
    with time_machine.travel(NOW, tick=False):
        many = _queries(client, reverse("followup-worklist"))
        work = selectors.worklist_get(user=coordinator, trial=walkback)
        assert (len(work.closing_soon), len(work.overdue), len(work.due_now)) == (5, 5, 5)
        assert (len(work.lost_to_followup), len(work.failed_messages)) == (15, 15)
        assert all(item.last_call is not None and item.contact is not None for item in work.rows)
    assert many == few


def test_the_participant_page_keeps_its_query_count_as_messages_and_calls_grow(
    client: Client, walkback: Trial, enrol, coordinator, sealed_list
) -> None:
    participant = _randomised(enrol, coordinator, dt.date(2026, 5, 1))
    services.occurrences_advance(now=NOW)
    client.force_login(coordinator)
    url = reverse("participant-detail", args=[participant.pk])
    with time_machine.travel(NOW, tick=False):
        _messages_for(participant, 1)
        services.call_log_record(participant=participant, outcome="no_answer", note="", by=coordinator)
        services.response_submit(occurrence=_monthly(participant, 1), raw=RECURRENCE, source="staff", by=coordinator)
        few = _queries(client, url)
        Message.objects.all().delete()
        _messages_for(participant, 12)
        for _ in range(5):
            services.call_log_record(participant=participant, outcome="message_left", note="", by=coordinator)
        services.response_submit(occurrence=_monthly(participant, 2), raw=RECURRENCE, source="staff", by=coordinator)
        many = _queries(client, url)
    assert many == few


def test_the_worklist_lists_the_data_queries_this_person_is_to_answer(client: Client, walkback: Trial, make_staff) -> None:  # type: ignore[no-untyped-def]
    from closeout.models import DataQuery

    coordinator = make_staff("coordinator", sites=["SYD"], username="sydney-coordinator")
    syd, bne = walkback.sites.get(code="SYD"), walkback.sites.get(code="BNE")
    mine = DataQuery.objects.create(
        trial=walkback, site=syd, record_type="participants.participant", record_id=1, field="status", text="?"
    )
    DataQuery.objects.create(trial=walkback, site=bne, record_type="participants.participant", record_id=2, text="elsewhere")
    DataQuery.objects.create(
        trial=walkback, site=syd, record_type="participants.participant", record_id=3, text="done", status="closed"
    )
    client.force_login(coordinator)
    page = client.get(reverse("followup-worklist")).content.decode()
    section = page.split('data-testid="section-queries"')[1].split("</ul>")[0]
    assert f"Query {mine.pk}" in section and section.count("list-group-item") == 1
    assert 'data-testid="count-queries">1<' in page and 'data-testid="all-queries"' not in page


def test_the_worklist_lists_the_newest_queries_and_links_to_all_of_them(
    client: Client, walkback: Trial, make_staff, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from closeout.models import DataQuery
    from console import worklist

    monkeypatch.setattr(worklist, "QUERY_ROWS", 3)
    coordinator = make_staff("coordinator", sites=["SYD"], username="sydney-coordinator")
    syd = walkback.sites.get(code="SYD")
    queries = [
        DataQuery.objects.create(trial=walkback, site=syd, record_type="participants.participant", record_id=n, text=f"q{n}")
        for n in range(5)
    ]
    client.force_login(coordinator)
    page = client.get(reverse("followup-worklist")).content.decode()
    section = page.split('data-testid="section-queries"')[1].split("</ul>")[0]
    assert [f"Query {q.pk}" in section for q in queries] == [False, False, True, True, True]  # the newest three
    assert 'data-testid="count-queries">5<' in page
    link = html.unescape(page.split('data-testid="all-queries"')[0].rsplit('href="', 1)[1].split('"')[0])
    listed = client.get(link).content.decode()
    assert all(f"/queries/{q.pk}/" in listed for q in queries)


def test_failed_session_messages_stay_off_the_worklist_of_a_blinded_role(walkback: Trial, make_staff) -> None:  # type: ignore[no-untyped-def]
    from intervention.models import Session
    from messaging.models import Message
    from tests.factories import ParticipantFactory
    from trial.models import Role

    Role.objects.filter(trial=walkback, code=RoleCode.COORDINATOR).update(sees_allocation=False)
    blinded = make_staff("coordinator", sites=["SYD"], username="blind-coordinator")
    walker = ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.get(code="walking"))
    session = Session.objects.create(
        participant=walker,
        number=1,
        name="Baseline",
        target_date=dt.date(2026, 3, 9),
        window_start=dt.date(2026, 3, 2),
        window_end=dt.date(2026, 3, 23),
    )
    now = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    common = {"participant": walker, "channel": "email", "planned_at": now, "due_at": now, "status": "failed"}
    Message.objects.create(session=session, step="confirmation-1", **common)
    Message.objects.create(step="invitation", **common)
    failed = selectors.failed_message_list(user=blinded, trial=walkback, now=now)
    assert [m.step for m in failed] == ["invitation"]


@time_machine.travel(NOW, tick=False)
def test_the_worklist_downloads_as_csv_section_by_section(client: Client, cohort, coordinator) -> None:
    import csv
    import io

    client.force_login(coordinator)
    assert 'data-testid="csv-download"' in _text(client.get(reverse("followup-worklist")))
    response = client.get(reverse("followup-worklist"), {"site": "SYD", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    pairs = {(r["study_id"], r["section"]) for r in rows}
    ids = {name: p.study_id for name, p in cohort.items()}
    assert {(ids["due"], "Due now"), (ids["overdue"], "Overdue"), (ids["closing"], "Closing soon")} <= pairs
    assert (ids["lost"], "Lost to follow-up") in pairs
    assert ids["elsewhere"] not in {r["study_id"] for r in rows}  # the page's site filter
    assert ids["withdrawn"] not in {r["study_id"] for r in rows}
    due = next(r for r in rows if r["study_id"] == ids["due"])
    assert (due["days_overdue"], due["email"]) == ("0", "pat@example.org")


def test_message_steps_read_as_words() -> None:
    from messaging.models import step_label

    assert [step_label(s) for s in ("invitation", "reminder-1", "reminder-2", "confirmation-1", "custom")] == [
        "Invitation",
        "First reminder",
        "Second reminder",
        "First confirmation",
        "Custom",
    ]


# --- Pages and filters ------------------------------------------------------------------------


def _bulk_cohort(trial: Trial, count: int, *, site: str = "SYD") -> list[Participant]:
    """``count`` participants written directly (not through the services): each has months 1-3
    missed (lost to follow-up), month 4 open in turn closing soon, overdue or due now, and a failed
    message about it."""
    from participants.models import ContactDetails
    from tests.factories import ParticipantFactory

    windows = (  # month 4: (due, opens, closes)
        (dt.date(2026, 9, 2), NOW - dt.timedelta(days=16), NOW + dt.timedelta(hours=20)),
        (dt.date(2026, 9, 10), NOW - dt.timedelta(days=8), NOW + dt.timedelta(days=10)),
        (dt.date(2026, 9, 17), NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=16)),
    )
    people = []
    occurrences = []
    for n in range(count):
        participant = ParticipantFactory(site=trial.sites.get(code=site))
        ContactDetails.objects.create(participant=participant, email="pat@example.org", timezone="Australia/Sydney")
        for month in (1, 2, 3):
            due = dt.date(2026, 5 + month, 2)
            occurrences.append(
                Occurrence(
                    participant=participant,
                    instrument="monthly",
                    month=month,
                    due_date=due,
                    opens_at=dt.datetime.combine(due, dt.time(), tzinfo=UTC),
                    closes_at=dt.datetime.combine(due + dt.timedelta(days=14), dt.time(), tzinfo=UTC),
                    status=OccurrenceStatus.MISSED,
                )
            )
        due, opens, closes = windows[n % 3]
        occurrences.append(
            Occurrence(
                participant=participant,
                instrument="monthly",
                month=4,
                due_date=due,
                opens_at=opens,
                closes_at=closes,
                status="open",
            )
        )
        people.append(participant)
    Occurrence.objects.bulk_create(occurrences)
    # What outcomes_derive keeps for each (the lost-to-follow-up rule reads it): three missed in a row.
    OutcomeSummary.objects.bulk_create(
        OutcomeSummary(
            participant=participant,
            monthly_missed=3,
            missed_in_a_row=3,
            last_missed=_monthly(participant, 3),
            last_missed_due=dt.date(2026, 8, 2),
            derived_at=NOW,
        )
        for participant in people
    )
    for participant in people:
        _failed_message(participant, _monthly(participant, 4), planned_at=NOW - dt.timedelta(days=1), error="Bounced")
    return people


def _rows(html: str, name: str) -> list[str]:
    return [chunk.split('"')[0] for chunk in _section(html, name).split('data-testid="row-')[1:]]


SECTIONS = ("closing-soon", "overdue", "due-now", "lost", "failed")


@time_machine.travel(NOW, tick=False)
def test_each_section_shows_a_page_of_rows_and_the_query_count_stays_the_same(
    client: Client, walkback: Trial, coordinator, monkeypatch
) -> None:
    from console import worklist

    monkeypatch.setattr(worklist, "PAGE_SIZE", 7)
    monkeypatch.setattr(worklist, "OVERVIEW_PAGE_SIZE", 7)
    client.force_login(coordinator)
    _bulk_cohort(walkback, 6)
    few = _queries(client, reverse("followup-worklist"))
    _bulk_cohort(walkback, 54)
    with CaptureQueriesContext(connection) as queries:
        html = _text(client.get(reverse("followup-worklist")))
    assert len(queries) == few

    assert all(len(_rows(html, name)) == 7 for name in SECTIONS)  # a page, never more
    totals = {name: html.split(f'data-testid="count-{name}">')[1].split("<")[0] for name in SECTIONS}
    assert totals == {"closing-soon": "20", "overdue": "20", "due-now": "20", "lost": "60", "failed": "60"}
    assert 'aria-label="Pages of Overdue"' in html and 'aria-current="page">1<' in html


@time_machine.travel(NOW, tick=False)
def test_the_overview_shows_the_most_urgent_of_each_section_and_a_section_alone_shows_more(
    client: Client, walkback: Trial, coordinator, monkeypatch
) -> None:
    from console import worklist

    monkeypatch.setattr(worklist, "PAGE_SIZE", 7)
    monkeypatch.setattr(worklist, "OVERVIEW_PAGE_SIZE", 3)
    _bulk_cohort(walkback, 60)
    client.force_login(coordinator)
    url = reverse("followup-worklist")
    overview = _text(client.get(url))
    assert all(len(_rows(overview, name)) == 3 for name in SECTIONS)
    link = html.unescape(overview.split('data-testid="only-overdue"')[0].rsplit('href="', 1)[1].split('"')[0])
    alone = _text(client.get(url + link))
    assert len(_rows(alone, "overdue")) == 7 and _rows(alone, "overdue")[:3] == _rows(overview, "overdue")
    assert 'data-testid="only-overdue"' not in alone and 'data-testid="section-due-now"' not in alone


@time_machine.travel(NOW, tick=False)
def test_later_pages_show_the_rest_and_keep_the_filters(client: Client, walkback: Trial, coordinator, monkeypatch) -> None:
    from console import worklist

    monkeypatch.setattr(worklist, "PAGE_SIZE", 7)
    monkeypatch.setattr(worklist, "OVERVIEW_PAGE_SIZE", 7)
    people = _bulk_cohort(walkback, 60)
    client.force_login(coordinator)
    url = reverse("followup-worklist")
    first = _text(client.get(url, {"site": "SYD"}))
    assert "page_overdue=2" in first.split('data-testid="pages-overdue"')[1].split("</nav>")[0]
    assert "site=SYD" in first.split('data-testid="pages-overdue"')[1].split("</nav>")[0]

    seen: list[str] = []
    for number in (1, 2, 3):
        seen += _rows(_text(client.get(url, {"site": "SYD", "page_overdue": number})), "overdue")
    overdue = {p.study_id for p in people[1::3]}
    assert len(seen) == 20 and set(seen) == overdue  # every row once, none twice
    lost: list[str] = []
    for number in range(1, 10):
        lost += _rows(_text(client.get(url, {"page_lost_to_followup": number})), "lost")
    assert sorted(lost) == sorted(p.study_id for p in people)
    past_the_end = _text(client.get(url, {"page_lost_to_followup": 99}))
    assert _rows(past_the_end, "lost") == sorted(p.study_id for p in people)[56:]  # the last page
    assert _rows(_text(client.get(url, {"page_overdue": "nonsense"})), "overdue") == seen[:7]


@time_machine.travel(NOW, tick=False)
def test_filters_narrow_the_counts_and_the_rows(client: Client, walkback: Trial, coordinator) -> None:
    people = _bulk_cohort(walkback, 6)
    elsewhere = _bulk_cohort(walkback, 3, site="BNE")
    client.force_login(coordinator)
    url = reverse("followup-worklist")

    def totals(html: str) -> dict[str, str]:
        return {
            kind: html.split(f'data-testid="total-{kind}">')[1].split("<")[0]
            for kind in ("closing_soon", "overdue", "due_now", "lost_to_followup", "failed_messages")
        }

    everything = _text(client.get(url))
    assert totals(everything) == {
        "closing_soon": "3",
        "overdue": "3",
        "due_now": "3",
        "lost_to_followup": "9",
        "failed_messages": "9",
    }
    syd = _text(client.get(url, {"site": "SYD"}))
    assert totals(syd) == {"closing_soon": "2", "overdue": "2", "due_now": "2", "lost_to_followup": "6", "failed_messages": "6"}
    assert not {p.study_id for p in elsewhere} & set(_rows(syd, "lost"))

    only_overdue = _text(client.get(url, {"kind": "overdue"}))
    assert set(_rows(only_overdue, "overdue")) == {p.study_id for p in people[1::3] + elsewhere[1::3]}
    assert all(f'data-testid="section-{name}"' not in only_overdue for name in ("closing-soon", "due-now", "lost", "failed"))
    assert totals(only_overdue) == totals(everything)  # the counts still show every section

    due_today_on = _text(client.get(url, {"due_from": "2026-09-10", "due_to": "2026-09-17"}))
    assert totals(due_today_on) == {
        "closing_soon": "0",
        "overdue": "3",
        "due_now": "3",
        "lost_to_followup": "0",
        "failed_messages": "6",
    }
    assert _rows(due_today_on, "closing-soon") == [] and len(_rows(due_today_on, "failed")) == 6
    form = everything.split('data-testid="worklist-filters"')[1].split("</form>")[0]
    assert all(f'for="id_{name}"' in form for name in ("site", "kind", "due_from", "due_to"))

    response = client.get(url, {"site": "BNE", "due_from": "2026-09-10", "format": "csv"})
    csv_ids = {line.split(",")[1] for line in b"".join(response.streaming_content).decode().splitlines()[1:]}
    assert csv_ids == {p.study_id for p in elsewhere[1:]}


@time_machine.travel(NOW, tick=False)
def test_each_section_is_in_its_own_order_across_its_pages(walkback: Trial, coordinator) -> None:
    """Closing soon by the end of the window, overdue most days late first, due now by due date;
    ties by study id. The three sections are read in one query, so this pins each one's order."""
    from tests.factories import ParticipantFactory

    rows = []
    for n in range(12):  # each section gets four, in a shuffled order of study ids
        participant = ParticipantFactory(site=walkback.sites.get(code="SYD"), study_id=f"WB-ORD-{(n * 7) % 12:02d}")
        kind, k = ("closing_soon", "overdue", "due_now")[n % 3], n // 3
        due, closes = {
            "closing_soon": (dt.date(2026, 9, 5), NOW + dt.timedelta(hours=30 - 5 * k)),
            "overdue": (dt.date(2026, 9, 1 + (k % 2) * 5), NOW + dt.timedelta(days=9)),  # two ties
            "due_now": (dt.date(2026, 9, 20 - k), NOW + dt.timedelta(days=20)),
        }[kind]
        rows.append((kind, participant.study_id, due, closes))
        Occurrence.objects.create(
            participant=participant,
            instrument="monthly",
            month=4,
            due_date=due,
            opens_at=NOW - dt.timedelta(days=20),
            closes_at=closes,
            status=OccurrenceStatus.OPEN,
        )
    expected = {
        "closing_soon": [r[1] for r in sorted((r for r in rows if r[0] == "closing_soon"), key=lambda r: (r[3], r[1]))],
        "overdue": [r[1] for r in sorted((r for r in rows if r[0] == "overdue"), key=lambda r: (r[2], r[1]))],
        "due_now": [r[1] for r in sorted((r for r in rows if r[0] == "due_now"), key=lambda r: (r[2], r[1]))],
    }
    for kind, order in expected.items():
        shown = []
        for page in (1, 2):
            work = selectors.worklist_get(user=coordinator, trial=walkback, page_size=3, pages={kind: page})
            shown += [item.participant.study_id for item in getattr(work, kind)]
        assert shown == order, kind
    everything = selectors.worklist_get(user=coordinator, trial=walkback)  # the CSV: every row, same order
    assert {kind: [i.participant.study_id for i in getattr(everything, kind)] for kind in expected} == expected


LATE_EVENING_UTC = dt.datetime(2026, 9, 15, 23, 0, tzinfo=UTC)


@time_machine.travel(LATE_EVENING_UTC, tick=False)
def test_overdue_follows_each_participants_own_date_far_from_utc(walkback: Trial, coordinator) -> None:
    """At 23:00 UTC on 15 September it is already the 16th at 13:00 in Kiritimati (UTC+14) and
    still the 15th at 12:00 in Pago Pago (UTC-11); the site's zone (Sydney, the 16th) stands in
    for a participant without one. A questionnaire is overdue once its due date has passed where
    its participant lives, and its days overdue count in their days."""
    from participants.models import ContactDetails
    from tests.factories import ParticipantFactory

    site = walkback.sites.get(code="SYD")
    expected: dict[str, tuple[str, int]] = {}
    for zone, name in (("Pacific/Kiritimati", "KIR"), ("Pacific/Pago_Pago", "PPG"), ("", "SYD")):
        for due_day in (13, 14, 15, 16, 17):
            participant = ParticipantFactory(site=site, study_id=f"WB-{name}-{due_day}")
            ContactDetails.objects.create(participant=participant, email=f"{name.lower()}{due_day}@example.org", timezone=zone)
            Occurrence.objects.create(
                participant=participant,
                instrument="monthly",
                month=4,
                due_date=dt.date(2026, 9, due_day),
                opens_at=LATE_EVENING_UTC - dt.timedelta(days=20),
                closes_at=LATE_EVENING_UTC + dt.timedelta(days=20),
                status=OccurrenceStatus.OPEN,
            )
            local_day = 15 if name == "PPG" else 16
            late = local_day - due_day
            expected[participant.study_id] = ("overdue", late) if late > 0 else ("due_now", 0)

    work = selectors.worklist_get(user=coordinator, trial=walkback, page_size=50)
    found = {
        item.participant.study_id: (kind, item.days_overdue) for kind in ("overdue", "due_now") for item in getattr(work, kind)
    }
    assert found == expected
    assert work.counts["overdue"] == sum(1 for kind, _late in expected.values() if kind == "overdue") == 8
