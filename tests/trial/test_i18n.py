"""Pages and messages in the participant's language. Every participant page is rendered in a
pseudo-language whose every translated message reads ⟦…⟧: any text a participant sees outside the
brackets was never marked for translation (or is data: the trial's and site's names, study ids,
dates, numbers). Adding a language is then a translation file, not code."""

# ruff: noqa: F811 - the fixtures imported from test_intervention are redefined as arguments
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import translation
from django.utils.translation import trans_real

from followup import services
from followup.models import InstrumentVersion, Occurrence
from intervention.models import Session
from messaging import services as messaging
from participants import links
from participants import services as journey
from participants.models import ContactDetails, Participant
from tests.intervention.test_intervention import physio, randomised  # noqa: F401 - a fixture
from trial.models import StratumLevel, Trial

UTC = dt.UTC
PSEUDO = "xx"
RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
IN_FIRST_WINDOW = dt.datetime(2026, 4, 2, 2, 0, tzinfo=UTC)  # month 1 is open in Sydney
DAY_AFTER_OPENING = dt.datetime(2026, 3, 30, 3, 0, tzinfo=UTC)
SESSIONS_OPEN = dt.datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Monday 2 March, 11:00 in Sydney


class PseudoTranslation:
    """A translation that marks every message it translates: "Next" reads "⟦Next⟧"."""

    def gettext(self, message: str) -> str:
        # pgettext and npgettext pass "context\x04message".
        return f"⟦{message.split(trans_real.CONTEXT_SEPARATOR, 1)[-1]}⟧"

    def ngettext(self, singular: str, plural: str, number: int) -> str:
        return self.gettext(singular if number == 1 else plural)

    def to_language(self) -> str:
        return PSEUDO

    def language(self) -> str:
        return PSEUDO


@pytest.fixture
def pseudo(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Changing LANGUAGES empties Django's translation cache, so the pseudo-translation goes in after.
    settings.LANGUAGES = [*settings.LANGUAGES, (PSEUDO, "Pseudo")]
    trans_real._translations[PSEUDO] = PseudoTranslation()  # type: ignore[assignment]
    known = trans_real.check_for_language
    monkeypatch.setattr(trans_real, "check_for_language", lambda code: code == PSEUDO or known(code))
    yield PSEUDO
    translation.activate(settings.LANGUAGE_CODE)


class _Visible(HTMLParser):
    """The text a person meets on a page: text nodes outside scripts and styles, and the
    attributes read out or shown (title, aria-label, placeholder, alt, a button's value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._hidden += 1
        values = dict(attrs)
        self.texts += [value for name in ("title", "aria-label", "placeholder", "alt") if (value := values.get(name))]
        if tag == "input" and values.get("type") in ("submit", "button", "reset") and values.get("value"):
            self.texts.append(str(values["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.texts.append(data)


def untranslated(html: str, *, data: set[str]) -> list[str]:
    """Every piece of visible text with letters outside the ⟦…⟧ markers, once the data values are
    taken out."""
    parser = _Visible()
    parser.feed(html)
    found = []
    for text in parser.texts:
        rest = text
        while (inner := re.sub(r"⟦[^⟦⟧]*⟧", " ", rest)) != rest:  # innermost first: markers nest
            rest = inner
        for value in sorted(data, key=len, reverse=True):
            rest = rest.replace(value, " ")
        if re.search(r"[^\W\d_]", rest):
            found.append(text.strip())
    return found


def _pseudo_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The instrument with every text of it translated into the pseudo-language."""

    def mark(text: str) -> str:
        return f"⟦{text}⟧"

    items = {}
    for item in definition["items"]:
        parts: dict[str, Any] = {"text": mark(item["text"])}
        if item.get("help"):
            parts["help"] = mark(item["help"])
        if item.get("choices"):
            parts["choices"] = {str(value): mark(label) for value, label in item["choices"]}
        items[item["code"]] = parts
    text: dict[str, Any] = {"title": mark(definition["title"]), "items": items}
    if definition.get("intro"):
        text["intro"] = mark(definition["intro"])
    return {**definition, "version": f"{definition['version']}-{PSEUDO}", "translations": {PSEUDO: text}}


@pytest.fixture
def answering(walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any, pseudo: str) -> Participant:
    """A randomised participant in the pseudo-language, whose monthly questionnaire has a version
    with its text in that language."""
    monthly = InstrumentVersion.objects.filter(trial=walkback, code="monthly").order_by("-published_at").first()
    assert monthly is not None
    with time_machine.travel(RANDOMISED_AT - dt.timedelta(days=30), tick=False):
        services.instrument_publish(trial=walkback, definition=_pseudo_definition(monthly.definition))
    with time_machine.travel(RANDOMISED_AT, tick=False):
        participant = enrol()
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    ContactDetails.objects.filter(participant=participant).update(language=pseudo)
    participant.refresh_from_db()
    return participant


def _data(participant: Participant) -> set[str]:
    """The values a page shows as they are, in any language."""
    site = participant.site
    return {site.trial.name, site.name, participant.study_id, site.timezone, *getattr(site, "contact_lines", [])}


def _assert_translated(response: Any, data: set[str]) -> str:
    html = response.content.decode()
    assert f'<html lang="{PSEUDO}">' in html
    assert untranslated(html, data=data) == [], response.request["PATH_INFO"]
    return html


def test_every_participant_questionnaire_page_is_in_the_participants_language(answering: Participant, client: Client) -> None:
    data = _data(answering)
    token = links.access_link_issue(participant=answering)
    with time_machine.travel(IN_FIRST_WINDOW, tick=False):
        services.occurrences_advance()
        first = Occurrence.objects.get(participant=answering, instrument="monthly", month=1)
        later = Occurrence.objects.get(participant=answering, instrument="monthly", month=2)
        step = f"/p/{token}/q/{first.pk}/step/"
        home = _assert_translated(client.get(f"/p/{token}/"), data)
        assert "⟦Monthly questionnaire⟧" in home and "⟦Start⟧" in home

        first_step = _assert_translated(client.get(f"{step}1/"), data)
        assert "⟦Next⟧" in first_step and "⟦Step %(position)s of %(total)s⟧" not in first_step
        client.post(f"{step}1/", {"lbp_any": "yes", "action": "next"})
        page = _assert_translated(client.get(f"{step}2/"), data)
        assert "⟦Back⟧" in page
        wrong = client.post(f"{step}2/", {"ep1_start": "", "ep1_24h": "yes", "ep1_pain_avg": "11", "action": "next"})
        assert wrong.status_code == 400
        errors = _assert_translated(wrong, data)
        assert "⟦Please check these answers⟧" in errors and "⟦Please choose a number from 0 to 10.⟧" in errors
        answers = {
            "ep1_start": "2026-03-20",
            "ep1_24h": "yes",
            "ep1_interference": "2",
            "ep1_pain_avg": "4",
            "ep1_pain_worst": "7",
            "ep1_care_sought": "yes",
        }
        client.post(f"{step}2/", {**answers, "action": "next"})
        _assert_translated(client.get(f"{step}3/"), data)
        client.post(f"{step}3/", {"ep1_care_from": ["gp"], "ep1_work_days_missed": "2", "ep1_more": "no", "action": "next"})
        _assert_translated(client.get(f"{step}8/"), data)
        client.post(f"{step}8/", {"new_health_problem": "no", "action": "next"})
        review = _assert_translated(client.get(f"/p/{token}/q/{first.pk}/review/"), data)
        assert "⟦Send my answers⟧" in review and "⟦Yes⟧" in review
        assert client.post(f"/p/{token}/q/{first.pk}/review/").status_code == 302
        thanks = _assert_translated(client.get(f"/p/{token}/q/{first.pk}/thanks/"), data)
        assert "⟦Thank you!⟧" in thanks

        _assert_translated(client.get(f"/p/{token}/q/{later.pk}/"), data)  # not open yet
        Occurrence.objects.filter(pk=later.pk).update(status="missed")
        _assert_translated(client.get(f"/p/{token}/q/{later.pk}/step/1/"), data)  # closed

        _assert_translated(client.get(f"/p/{token}/stop/email/"), data)
        _assert_translated(client.post(f"/p/{token}/stop/email/"), data)

        # A link since replaced: the page says so in the language of the link's owner.
        newer = links.access_link_issue(participant=answering)
        replaced = client.get(f"/p/{token}/")
        assert replaced.status_code == 410
        _assert_translated(replaced, data)

        Trial.objects.filter(pk=answering.site.trial_id).update(data_locked_at=IN_FIRST_WINDOW)
        closed = _assert_translated(client.get(f"/p/{newer}/"), data)
        assert "⟦The study has closed⟧" in closed


def test_the_walking_programmes_pages_are_in_the_participants_language(
    walkback: Trial,
    physio: Any,
    pseudo: str,
    client: Client,
) -> None:
    walker = randomised(walkback, "walking", email="w@example.org", language=pseudo)
    sessions = {s.name for s in Session.objects.filter(participant=walker)}  # the trial's names for them
    data = _data(walker) | sessions
    token = links.access_link_issue(participant=walker)
    first = Session.objects.get(participant=walker, number=1)
    with time_machine.travel(SESSIONS_OPEN, tick=False):
        home = _assert_translated(client.get(f"/p/{token}/"), data)
        assert "⟦Your walking programme⟧" in home
        listing = _assert_translated(client.get(f"/p/{token}/sessions/"), data)
        assert "⟦Choose a time⟧" in listing
        _assert_translated(client.get(f"/p/{token}/sessions/{first.pk}/book/"), data)
        refused = client.post(f"/p/{token}/sessions/{first.pk}/book/", {"mode": "in_person", "starts_at": "soon"})
        assert "⟦Please choose one of the times below.⟧" in _assert_translated(refused, data)
        _assert_translated(client.get(f"/p/{token}/diary/"), data)
        wrong = client.post(f"/p/{token}/diary/", {"walked_on": "2026-03-02", "minutes": "many"})
        assert "⟦Please check the walk.⟧" in _assert_translated(wrong, data)
        saved = client.post(f"/p/{token}/diary/", {"walked_on": "2026-03-02", "minutes": "30", "steps": "3000"}, follow=True)
        assert "⟦Saved: %(minutes)s minutes on %(day)s. Well done!⟧" not in _assert_translated(saved, data)


# --- a real second language: messages from its own wording, pages marked with it ----------------


@pytest.fixture
def french(settings: Any) -> str:
    settings.LANGUAGES = [*settings.LANGUAGES, ("fr", "Français")]
    return "fr"


def test_a_participant_gets_messages_in_their_language_and_the_site_language_otherwise(
    walkback: Trial, enrol: Any, coordinator: Any, sealed_list: Any, french: str, client: Client
) -> None:
    with time_machine.travel(RANDOMISED_AT, tick=False):
        english, speaks_french = enrol(), enrol()
        for participant in (english, speaks_french):
            journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    ContactDetails.objects.filter(participant=speaks_french).update(email="fr@example.org", language=french)
    messaging.message_template_publish(
        trial=walkback,
        code="invitation",
        channel="email",
        language=french,
        subject="Votre questionnaire {{ trial }} est prêt",
        body="Bonjour,\n\nRépondez avant le {{ closes_on }} : {{ link }}\n",
    )

    with time_machine.travel(DAY_AFTER_OPENING, tick=False):
        services.occurrences_advance(now=DAY_AFTER_OPENING)
        messaging.messages_send_due(now=DAY_AFTER_OPENING)

    sent = {email.to[0]: email for email in mail.outbox}
    assert sent["fr@example.org"].subject == f"Votre questionnaire {walkback.name} est prêt"
    # The wording's values are in French too: the month in the date.
    assert "Bonjour" in sent["fr@example.org"].body and "avril 2026" in sent["fr@example.org"].body
    assert sent["pat@example.org"].subject == f"Your {walkback.name} questionnaire is ready"
    # A message with no French wording yet goes out in the site's language.
    assert messaging._Renderer().template(walkback.pk, "reminder", "email", french).language == "en-au"  # type: ignore[union-attr]

    token = links.access_link_issue(participant=speaks_french)
    with time_machine.travel(DAY_AFTER_OPENING, tick=False):
        page = client.get(f"/p/{token}/").content.decode()
    assert '<html lang="fr">' in page


def test_a_language_the_installation_does_not_offer_is_refused(walkback: Trial) -> None:
    with pytest.raises(messaging.ApplicationError):
        messaging.message_template_publish(
            trial=walkback, code="invitation", channel="email", language="tlh", subject="", body="x"
        )


def test_the_check_finds_text_left_unmarked_and_allows_only_the_data_named() -> None:
    html = (
        '<title>⟦Home⟧</title><p>⟦Hello⟧ WalkBack</p><button aria-label="Close">⟦x⟧</button>'
        '<p>⟦Session ⟦one⟧⟧ 2 ⟦March⟧ 2026</p><script>var shown = "no";</script>'
    )
    assert untranslated(html, data={"WalkBack"}) == ["Close"]
    assert untranslated(html, data=set()) == ["⟦Hello⟧ WalkBack", "Close"]


def _configuration(trial: Trial) -> set[str]:
    """The trial's own configuration, written in the language it was set up in: its registration,
    arms, eligibility criteria, stratification factors and levels, and its sites' time zones."""
    return {
        trial.registration,
        *trial.arms.values_list("name", flat=True),
        *trial.eligibility.values_list("text", flat=True),
        *trial.strata.values_list("label", flat=True),
        *StratumLevel.objects.filter(factor__trial=trial).values_list("label", flat=True),
        *trial.sites.values_list("name", flat=True),
        *trial.sites.values_list("code", flat=True),
        *trial.sites.values_list("timezone", flat=True),
    }


def test_the_dashboard_and_participant_list_are_in_the_staff_members_language(
    walkback: Trial, enrol: Any, coordinator: Any, pseudo: str, client: Client
) -> None:
    participant = enrol()
    client.force_login(coordinator)
    client.cookies["django_language"] = pseudo  # what a browser set to the language asks for
    data = {walkback.name, participant.study_id, coordinator.get_username()} | _configuration(walkback)
    for path in ("/", "/participants/"):
        response = client.get(path)
        assert response.status_code == 200
        html = response.content.decode()
        assert f'<html lang="{PSEUDO}">' in html
        found = untranslated(html, data=data)
        assert not found, f"{path}: " + " | ".join(found)
