"""Links participants can rely on: a welcome with the link at enrolment, and "send me my link" from
a link that no longer works, sent only to the contact details on file, throttled, and answered
the same whether or not the address is known."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from followup.views import _LinkRequestThrottle
from messaging import services as messaging
from messaging.links import NEW_LINK, WELCOME
from messaging.models import Message, MessagePolicy, MessageStatus
from participants import links
from participants import services as journey
from trial.models import Site, Trial

UTC = dt.UTC
ENROLLED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 12:00 in Sydney
LATE_EVENING = dt.datetime(2026, 3, 10, 12, 30, tzinfo=UTC)  # 23:30 in Sydney: quiet hours


@pytest.fixture
def welcome_on(walkback: Trial) -> Trial:
    MessagePolicy.objects.filter(trial=walkback).update(welcome_message=True)
    return walkback


@pytest.fixture
def contact(walkback: Trial) -> Site:
    site = walkback.sites.get(code="SYD")
    site.contact_name, site.contact_phone, site.contact_email = "Sam Nurse", "02 9999 0000", "walkback@example.org"
    site.contact_hours = "weekdays 9 to 5"
    site.save()
    return site


@pytest.fixture
def participant(walkback: Trial, enrol: Any) -> Any:
    with time_machine.travel(ENROLLED_AT, tick=False):
        return enrol()


def _sweep(at: dt.datetime) -> messaging.SweepResult:
    with time_machine.travel(at, tick=False):
        return messaging.messages_send_due(now=at)


def _link_in(body: str) -> str:
    return next(word for word in body.split() if "/p/" in word and "/stop/" not in word)


def _requests(participant: Any) -> int:
    return Message.objects.filter(participant=participant, step=NEW_LINK).count()


def test_enrolment_sends_a_welcome_with_a_working_link_and_the_study_contact_once(
    welcome_on: Trial, contact: Site, enrol: Any, client: Client
) -> None:
    with time_machine.travel(ENROLLED_AT, tick=False):
        participant = enrol()
    (welcome,) = Message.objects.filter(participant=participant, step=WELCOME)
    assert welcome.channel == "email" and welcome.status == MessageStatus.PLANNED
    assert messaging.message_welcome_plan(participant=participant) == 0  # once, however often it runs

    assert _sweep(ENROLLED_AT + dt.timedelta(minutes=2)).sent >= 1
    (email,) = [m for m in mail.outbox if m.subject.startswith("Welcome")]
    assert email.to == ["pat@example.org"]
    assert "Sam Nurse, 02 9999 0000 (weekdays 9 to 5), walkback@example.org" in email.body
    page = client.get(_link_in(email.body).split("testserver", 1)[-1])
    assert page.status_code == 200 and "Sam Nurse" in page.content.decode()  # the contact on every page


def test_no_welcome_when_the_trial_does_not_send_one(walkback: Trial, enrol: Any) -> None:
    participant = enrol()
    assert not Message.objects.filter(participant=participant, step=WELCOME).exists()


def test_a_replaced_link_offers_the_current_link_and_sends_it_only_to_the_contact_on_file(
    participant: Any, contact: Site, client: Client
) -> None:
    old = links.access_link_issue(participant=participant)
    current = links.access_link_issue(participant=participant)
    with time_machine.travel(LATE_EVENING, tick=False):
        page = client.get(f"/p/{old}/")
        assert page.status_code == 410
        text = page.content.decode()
        assert "Send me my link" in text and "Sam Nurse" in text and 'data-testid="study-contact"' in text

        done = client.post("/link/", {"token": old})
    assert done.status_code == 200 and "Check your messages" in done.content.decode()
    assert _requests(participant) == 1

    # It goes out at once, although quiet hours hold questionnaire reminders back.
    assert _sweep(LATE_EVENING + dt.timedelta(minutes=1)).sent == 1
    (email,) = mail.outbox
    assert email.to == ["pat@example.org"] and email.subject == "Your link to the WalkBack study"
    assert _link_in(email.body).endswith(f"/p/{current}/")  # the live link: asking never replaces it
    assert links.access_link_participant(token=current) == participant


def test_the_answer_is_the_same_whether_or_not_the_address_is_known(participant: Any, client: Client) -> None:
    def ask(address: str) -> str:
        response = client.post("/link/", {"address": address})
        assert response.status_code == 200
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())

    unknown = ask("nobody@example.org")
    assert _requests(participant) == 0
    known = ask("PAT@example.org")
    assert _requests(participant) == 1
    assert known == unknown
    by_mobile = ask("+61 400 000 000")  # spaces and all
    assert by_mobile == unknown and _requests(participant) == 2


def test_a_link_that_never_existed_asks_for_the_address_and_explains_a_missing_one(
    participant: Any, contact: Site, client: Client
) -> None:
    page = client.get("/p/not-a-real-token-at-all/")
    assert page.status_code == 404
    text = page.content.decode()
    assert 'name="address"' in text and "Sam Nurse" in text  # every site's team, since the site is unknown

    empty = client.post("/link/", {"address": "  "})
    assert empty.status_code == 400
    text = empty.content.decode()
    assert 'aria-describedby="id_address_help id_address_error"' in text and 'id="id_address_error"' in text


def test_each_participant_gets_at_most_the_policys_requests_a_day(participant: Any, client: Client) -> None:
    old = links.access_link_issue(participant=participant)
    links.access_link_issue(participant=participant)
    start = dt.datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    for minutes in range(5):
        with time_machine.travel(start + dt.timedelta(minutes=minutes), tick=False):
            assert client.post("/link/", {"token": old}).status_code == 200  # the same answer each time
    assert Message.objects.filter(participant=participant, step=NEW_LINK).values("planned_at").distinct().count() == 3
    with time_machine.travel(start + dt.timedelta(days=1, minutes=1), tick=False):
        client.post("/link/", {"token": old})
    assert Message.objects.filter(participant=participant, step=NEW_LINK).values("planned_at").distinct().count() == 4


def test_one_device_asking_too_often_is_told_to_wait(participant: Any, client: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(_LinkRequestThrottle, "THROTTLE_RATES", {"link-request": "2/hour"})
    for _ in range(2):
        assert client.post("/link/", {"address": "someone@example.org"}).status_code == 200
    refused = client.post("/link/", {"address": "pat@example.org"})
    assert refused.status_code == 429 and "try again in an hour" in refused.content.decode()
    assert _requests(participant) == 0


def test_nothing_is_sent_to_a_participant_withdrawn_from_follow_up(participant: Any, coordinator: Any) -> None:
    journey.participant_withdraw(participant=participant, scope="followup", reason="Moved away", by=coordinator)
    participant.refresh_from_db()
    assert messaging.link_request(trial=participant.site.trial, address="pat@example.org") is False
    assert _requests(participant) == 0
