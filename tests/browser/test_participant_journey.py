"""A coordinator on a phone takes a person from screening to randomisation; the investigator stays blind."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from participants.models import Participant
from tests.browser.conftest import demo_login
from tests.factories import baseline_complete
from trial.models import Allocation, CriterionKind, EligibilityCriterion, Trial
from trial.services import randomisation_list_generate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(db: Any) -> Trial:
    call_command("demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    trial = Trial.objects.get(code="walkback")
    randomisation_list_generate(trial=trial, seed="a-secret-seed-of-16+chars", per_stratum=8, by="test")
    return trial


def _login(page: Any, base: str, username: str) -> None:
    demo_login(page, base, username)
    page.wait_for_selector("[data-testid=whoami]", state="attached")


def test_a_coordinator_screens_enrols_and_randomises_and_the_investigator_stays_blind(
    phone: Any, page: Any, live_server: Any, demo: Trial
) -> None:
    base = live_server.url
    arm_names = list(demo.arms.values_list("name", flat=True))

    # Screening, on a 390px phone.
    _login(phone, base, "coordinator")
    phone.goto(f"{base}/screening/new/")
    phone.select_option("select[name=site]", label="SYD Sydney CBD Physiotherapy")
    phone.select_option("select[name=referral]", "clinician")
    for criterion in EligibilityCriterion.objects.filter(trial=demo, active=True):
        answer = "Yes" if criterion.kind == CriterionKind.INCLUSION else "No"
        phone.locator(f"[data-testid=choice-answer_{criterion.code}] label", has_text=answer).click()
    phone.click("input[type=submit]")
    assert phone.inner_text("[data-testid=eligibility-result]").startswith("Eligible")

    # Enrolment: consent, strata (referral already filled in from screening), contact.
    phone.click("[data-testid=enrol-link]")
    assert phone.input_value("select[name=stratum_referral]") == "clinician"
    phone.locator("[data-testid=choice-method] label", has_text="In person").click()
    phone.fill("input[name=signed_name]", "Alex Example")
    phone.select_option("select[name=stratum_prior_episodes_gt2]", "yes")
    phone.fill("input[name=email]", "alex@example.org")
    phone.click("input[type=submit]")
    study_id = phone.inner_text("[data-testid=study-id]")
    assert re.fullmatch(r"WB-SYD-\d{4}", study_id)
    assert phone.inner_text("[data-testid=participant-status]") == "Enrolled"

    # Randomisation waits for the baseline questionnaire (its entry page has tests of its own).
    phone.click("[data-testid=randomise-button]")
    assert "the baseline questionnaire is not complete" in phone.inner_text("[data-testid=randomise-missing]")
    enrolled = Participant.objects.get(study_id=study_id)
    baseline_complete(enrolled, by=get_user_model().objects.get(username="coordinator"))

    # Randomisation, confirmed on its own page; the coordinator sees the arm.
    phone.goto(f"{base}/participants/{enrolled.pk}/")
    phone.click("[data-testid=randomise-button]")
    phone.click("[data-testid=randomise-confirm]")
    phone.wait_for_selector("[data-testid=participant-status]:has-text('Randomised')")
    arm = phone.inner_text("[data-testid=arm]")
    allocation = Allocation.objects.select_related("arm").get(participant__study_id=study_id)
    assert arm == allocation.arm.name
    # The phone page does not scroll sideways.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The investigator (blinded) finds the participant but never an arm name.
    participant = Participant.objects.get(study_id=study_id)
    _login(page, base, "investigator")
    page.click("#mainnav >> text=Participants")
    page.fill("input[name=search]", study_id)
    page.click("[data-testid=filters] button")
    page.click(f"[data-testid=participants-table] >> text={study_id}")
    page.wait_for_selector("[data-testid=participant-status]")
    assert page.url.endswith(f"/participants/{participant.pk}/")
    assert page.inner_text("[data-testid=participant-status]") == "Randomised"
    body = page.inner_text("body")
    assert all(name not in body for name in arm_names)
    assert page.locator("[data-testid=arm]").count() == 0
    assert page.is_visible("[data-testid=unblind-button]")
