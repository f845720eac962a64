"""Answers read as a person reads them (question, then the answer's label), and a date of birth is
shown only to roles that see contact details: on the participant page, in the API and in history."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from followup import instruments
from followup.models import QuestionnaireResponse
from participants.models import Participant
from presets.instrument_library import BASELINE, MONTHLY

BORN = "1980-02-29"

DEFINITION: dict[str, Any] = {
    "code": "demo",
    "version": "1",
    "title": "Demo",
    "items": [
        {"code": "date_of_birth", "text": "What is your date of birth?", "type": "date"},
        {"code": "pain", "text": "Any pain?", "type": "yes_no"},
        {"code": "where", "text": "Where?", "type": "multi_choice", "choices": [["gp", "Your GP"], ["physio", "A physio"]]},
        {"code": "sex", "text": "Sex?", "type": "choice", "choices": [["f", "Female"], ["m", "Male"]]},
        {"code": "kg", "text": "Weight?", "type": "number"},
        {"code": "postcode", "text": "Postcode?", "type": "text", "identifying": True},
    ],
    "scores": [{"code": "pain_score", "method": "value", "items": ["pain"], "label": "Pain (yes/no)"}],
}
ANSWERS = {"date_of_birth": BORN, "pain": True, "where": ["gp", "physio"], "sex": "f", "kg": 72.0, "postcode": "2000"}


def test_answers_read_as_questions_and_labels_not_codes() -> None:
    instruments.validate_definition(definition=DEFINITION)
    rows = instruments.answers_readable(definition=DEFINITION, answers=ANSWERS, show_identifying=True)
    assert [(r.question, r.answer) for r in rows] == [
        ("What is your date of birth?", "29 Feb 1980"),
        ("Any pain?", "Yes"),
        ("Where?", "Your GP; A physio"),
        ("Sex?", "Female"),
        ("Weight?", "72"),
        ("Postcode?", "2000"),
    ]
    assert instruments.scores_readable(definition=DEFINITION, scores={"pain_score": None}) == [("Pain (yes/no)", "—")]


def test_identifying_answers_are_hidden_unless_asked_for() -> None:
    rows = instruments.answers_readable(definition=DEFINITION, answers=ANSWERS, show_identifying=False)
    hidden = {r.code for r in rows if r.hidden}
    assert hidden == {"date_of_birth", "postcode"}
    assert all("1980" not in r.answer and "2000" not in r.answer for r in rows)
    assert instruments.answers_redact(definition=DEFINITION, answers=ANSWERS) == {
        **ANSWERS,
        "date_of_birth": instruments.HIDDEN,
        "postcode": instruments.HIDDEN,
    }


def test_identifying_must_be_true_or_false() -> None:
    broken = {**DEFINITION, "items": [{**DEFINITION["items"][0], "identifying": "yes"}]}
    with pytest.raises(instruments.DefinitionError, match="identifying must be true or false"):
        instruments.validate_definition(definition=broken)


def test_every_library_answer_reads_without_codes() -> None:
    """A monthly v2 answer with an episode: no raw True/False or list brackets on the page."""
    answers = {"lbp_any": True, "ep1_24h": True, "ep1_care_from": ["gp"], "ep1_start": "2026-03-02"}
    rows = instruments.answers_readable(definition=MONTHLY, answers=answers, show_identifying=False)
    assert rows and all(r.answer not in ("True", "False") and "[" not in r.answer for r in rows)
    assert "date_of_birth" in instruments.identifying_codes(definition=BASELINE)


@pytest.fixture
def answered(enrol: Any) -> Participant:
    return enrol()  # baseline entered by the coordinator, with a date of birth


def test_the_coordinator_sees_the_date_of_birth_a_blinded_statistician_does_not(
    answered: Participant, coordinator: Any, make_staff: Any, client: Client
) -> None:
    response = QuestionnaireResponse.objects.get(occurrence__participant=answered)
    assert response.answers["date_of_birth"] == BORN
    statistician = make_staff("statistician", username="stan")
    history = reverse("record-history", args=["followup", "questionnaireresponse", response.pk])
    for user, shown in ((coordinator, True), (statistician, False)):
        client.force_login(user)
        page = client.get(reverse("participant-detail", args=[answered.pk])).content.decode()
        assert "What is your date of birth?" in page
        assert ("29 Feb 1980" in page) is shown
        assert ("Hidden: only roles that see contact details see it" in page) is not shown
        api = client.get(reverse("api-participant-responses", args=[answered.pk])).json()
        assert (api[0]["answers"]["date_of_birth"] == BORN) is shown
        assert (api[0]["answers"]["date_of_birth"] == instruments.HIDDEN) is not shown
        trail = client.get(history).content.decode()
        assert ("1980-02-29" in trail) is shown


def test_a_data_manager_raises_a_query_on_an_answer_from_the_participant_page(
    answered: Participant, make_staff: Any, client: Client
) -> None:
    response = QuestionnaireResponse.objects.get(occurrence__participant=answered)
    manager = make_staff("data_manager", username="dm")
    client.force_login(manager)
    page = client.get(reverse("participant-detail", args=[answered.pk])).content.decode()
    link = f"{reverse('query-new')}?record=followup.questionnaireresponse:{response.pk}&amp;field=height_cm"
    assert link in page and 'data-testid="query-answer"' in page
    form = client.get(link.replace("&amp;", "&"))
    assert form.status_code == 200 and form.context["form"]["field"].value() == "height_cm"
    assert "field=date_of_birth" not in page  # a hidden answer offers no query link
