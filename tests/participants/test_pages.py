"""Staff pages for the participant journey: what the user sees, and what the database holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from participants import services
from participants.models import (
    Consent,
    ContactDetails,
    Participant,
    ParticipantStatus,
    Screening,
    ScreeningOutcome,
    Unblinding,
    Withdrawal,
)
from tests.factories import PASSWORD, ParticipantFactory, baseline_complete
from trial.models import Allocation, Arm, CriterionKind, Trial
from trial.services import randomisation_list_generate

SEED = "a-secret-seed-of-16+chars"
ARM_NAMES = ("Walking and education programme", "No intervention (control)")


def _answers(trial: Trial, **overrides: bool) -> dict[str, bool]:
    """An eligible person's answers, with some changed."""
    answers = {c.code: c.kind == CriterionKind.INCLUSION for c in trial.eligibility.filter(active=True)}
    return {**answers, **overrides}


def _screening_post(trial: Trial, site: str = "SYD", **overrides: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "site": trial.sites.get(code=site).pk,
        "screened_on": timezone.localdate().isoformat(),
        "referral": "clinician",
    }
    for code, value in _answers(trial, **overrides).items():
        data[f"answer_{code}"] = "yes" if value else "no"
    return data


def _enrol_post(**overrides: str) -> dict[str, str]:
    return {
        "version": "1.0",
        "method": "in_person",
        "signed_name": "Alex Example",
        "stratum_prior_episodes_gt2": "yes",
        "stratum_referral": "clinician",
        "email": "alex@example.org",
        "mobile": "+61400000000",
        "preferred_channel": "sms",
        "timezone": "Australia/Sydney",
        **overrides,
    }


def _enrolled(trial: Trial, by: Any, site: str = "SYD") -> Participant:
    """A screened, consented, stratified participant with a complete baseline, made through the services."""
    screening = services.screening_record(site=trial.sites.get(code=site), answers=_answers(trial), by=by, referral="community")
    participant = services.participant_enrol(
        screening=screening,
        consent=services.ConsentInput(method="in_person", signed_name="Sam Example"),
        strata={"prior_episodes_gt2": "no"},
        contact=services.ContactInput(email="sam@example.org"),
        by=by,
    )
    baseline_complete(participant, by=by)
    return participant


def _text(response: Any) -> str:
    return response.content.decode()


# --- Navigation and permissions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sites", "sees_links"),
    [("coordinator", ["SYD"], True), ("investigator", [], True), ("statistician", [], True), ("admin", [], False)],
)
def test_navigation_offers_screening_and_participants_to_roles_that_view_participants(
    client, make_staff, role, sites, sees_links
) -> None:
    client.force_login(make_staff(role, sites=sites))
    nav = _text(client.get(reverse("dashboard"))).split('id="mainnav"')[1].split("</ul>")[0]
    assert (">Screening</a>" in nav) is sees_links
    assert (">Participants</a>" in nav) is sees_links
    assert nav.index(">Dashboard</a>") < nav.index(">API</a>")


def test_roles_without_the_permission_are_refused(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)
    client.force_login(make_staff("physiotherapist", sites=["SYD"]))
    assert client.get(reverse("screening-new")).status_code == 403
    assert client.post(reverse("participant-randomise", args=[participant.pk])).status_code == 403
    assert client.get(reverse("participant-unblind", args=[participant.pk])).status_code == 403
    client.force_login(make_staff("admin"))
    assert client.get(reverse("participant-list")).status_code == 403
    assert not Allocation.objects.exists()


# --- Screening ------------------------------------------------------------------------------


def test_screening_form_decides_eligibility_and_lists_the_reasons(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    form = _text(client.get(reverse("screening-new")))
    assert "Aged 18 years or older" in form
    assert "Exclusion" in form

    response = client.post(
        reverse("screening-new"), _screening_post(walkback, age_18_plus=False, already_active=True), follow=True
    )

    screening = Screening.objects.get()
    assert response.redirect_chain[-1][0] == reverse("screening-detail", args=[screening.pk])
    result = _text(response).split('data-testid="eligibility-result"')[1].split("</div>")[0]
    assert "Not eligible" in result
    assert "Aged 18 years or older" in result
    assert "Already walking for exercise" in result
    assert screening.eligible is False
    assert screening.reasons == ["age_18_plus", "already_active"]
    assert screening.referral == "clinician"
    assert 'data-testid="enrol-link"' not in _text(response)


def test_an_eligible_person_is_offered_enrolment_or_declining(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    response = client.post(reverse("screening-new"), _screening_post(walkback), follow=True)
    html = _text(response)
    assert "<strong>Eligible</strong>" in html
    assert 'data-testid="enrol-link"' in html
    assert 'data-testid="decline-form"' in html

    screening = Screening.objects.get()
    declined = client.post(reverse("screening-decline", args=[screening.pk]), {"reason": "No time"}, follow=True)
    assert "declined" in _text(declined)
    screening.refresh_from_db()
    assert screening.outcome == ScreeningOutcome.DECLINED
    assert screening.declined_reason == "No time"


def test_the_screening_form_offers_only_the_users_sites(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    response = client.get(reverse("screening-new"))
    assert list(response.context["form"].fields["site"].queryset.values_list("code", flat=True)) == ["SYD"]


def test_a_coordinator_cannot_screen_at_a_site_they_do_not_work_at(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    response = client.post(reverse("screening-new"), _screening_post(walkback, site="BNE"))
    assert response.status_code == 200
    assert "Choose one of the sites you work at." in _text(response)
    assert not Screening.objects.exists()


def test_a_screening_the_service_refuses_shows_its_message_and_writes_nothing(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    data = _screening_post(walkback)
    data["screened_on"] = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    response = client.post(reverse("screening-new"), data)
    assert response.status_code == 200
    assert "The screening date cannot be in the future." in _text(response)
    assert response.context["form"].errors["screened_on"] == ["In the future."]
    assert not Screening.objects.exists()


def test_a_screening_before_recruitment_started_is_refused_on_its_field(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    data = _screening_post(walkback)
    data["screened_on"] = (walkback.recruitment_start - dt.timedelta(days=1)).isoformat()
    response = client.post(reverse("screening-new"), data)
    assert response.status_code == 200
    assert "The screening date is before recruitment started (02 Mar 2026)." in _text(response)
    assert response.context["form"].errors["screened_on"] == ["Before recruitment started on 02 Mar 2026."]
    assert not Screening.objects.exists()


def test_an_unanswered_criterion_is_pointed_out_and_nothing_is_written(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    data = _screening_post(walkback)
    del data["answer_able_to_walk"]
    response = client.post(reverse("screening-new"), data)
    assert response.context["form"].errors["answer_able_to_walk"] == ["Answer yes or no."]
    assert not Screening.objects.exists()


def test_screening_log_filters_and_keeps_its_query_count_as_rows_grow(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD", "NCL"])
    client.force_login(coordinator)
    syd, ncl = walkback.sites.get(code="SYD"), walkback.sites.get(code="NCL")
    services.screening_record(site=syd, answers=_answers(walkback), by=coordinator)
    _enrolled(walkback, coordinator)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("screening-log")).context["page"].paginator.count == 2
    for _ in range(20):
        services.screening_record(site=ncl, answers=_answers(walkback, able_to_walk=False), by=coordinator)
    _enrolled(walkback, coordinator, site="NCL")
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("screening-log")).context["page"].paginator.count == 23
    assert len(many) == len(few)

    ineligible = client.get(reverse("screening-log"), {"site": "NCL", "outcome": "ineligible"})
    assert ineligible.context["page"].paginator.count == 20
    assert client.get(reverse("screening-log"), {"date_from": "2999-01-01"}).context["page"].paginator.count == 0
    assert "WB-SYD-0001" in _text(client.get(reverse("screening-log"), {"outcome": "enrolled"}))


# --- Enrolment ------------------------------------------------------------------------------


def test_enrol_creates_the_participant_with_a_study_id_and_contact_details(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    client.force_login(coordinator)
    screening = services.screening_record(
        site=walkback.sites.get(code="SYD"), answers=_answers(walkback), by=coordinator, referral="clinician"
    )
    form = client.get(reverse("screening-enrol", args=[screening.pk])).context["form"]
    assert form["stratum_referral"].initial == "clinician"
    assert form["version"].initial == "1.0"
    assert form["timezone"].initial == "Australia/Sydney"

    response = client.post(reverse("screening-enrol", args=[screening.pk]), _enrol_post(), follow=True)

    participant = Participant.objects.get()
    assert participant.study_id == "WB-SYD-0001"
    assert response.redirect_chain[-1][0] == reverse("participant-detail", args=[participant.pk])
    html = _text(response)
    assert "Enrolled as WB-SYD-0001." in html
    assert "alex@example.org" in html.split('data-testid="contact"')[1]
    assert dict(participant.strata.values_list("factor__code", "level__code")) == {
        "prior_episodes_gt2": "yes",
        "referral": "clinician",
    }
    contact = ContactDetails.objects.get(participant=participant)
    assert (contact.email, contact.mobile, contact.preferred_channel) == ("alex@example.org", "+61400000000", "sms")
    consent = Consent.objects.get(participant=participant)
    assert (consent.document.version, consent.method, consent.signed_name, consent.taken_by) == (
        "1.0",
        "in_person",
        "Alex Example",
        coordinator,
    )
    screening.refresh_from_db()
    assert screening.outcome == ScreeningOutcome.ENROLLED


def test_enrol_without_a_signed_name_shows_the_error_and_writes_nothing(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    client.force_login(coordinator)
    screening = services.screening_record(site=walkback.sites.get(code="SYD"), answers=_answers(walkback), by=coordinator)
    response = client.post(reverse("screening-enrol", args=[screening.pk]), _enrol_post(signed_name=""))
    assert response.status_code == 200
    assert "The participant types their name to sign." in _text(response)
    assert not Participant.objects.exists()
    assert not Consent.objects.exists()
    assert not ContactDetails.objects.exists()
    screening.refresh_from_db()
    assert screening.outcome == ScreeningOutcome.ELIGIBLE


def test_enrol_refused_by_the_service_shows_why_and_writes_nothing(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    client.force_login(coordinator)
    screening = services.screening_record(site=walkback.sites.get(code="SYD"), answers=_answers(walkback), by=coordinator)
    response = client.post(reverse("screening-enrol", args=[screening.pk]), _enrol_post(email="", mobile=""))
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Give an e-mail address or a mobile number."]
    assert "The enrolment is incomplete" in _text(response)
    assert not Participant.objects.exists()
    walkback.sites.get(code="SYD").refresh_from_db()
    assert walkback.sites.get(code="SYD").next_participant_number == 1


def test_an_ineligible_person_gets_no_enrolment_form(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    client.force_login(coordinator)
    screening = services.screening_record(
        site=walkback.sites.get(code="SYD"), answers=_answers(walkback, able_to_walk=False), by=coordinator
    )
    assert 'data-testid="not-enrollable"' in _text(client.get(reverse("screening-enrol", args=[screening.pk])))
    response = client.post(reverse("screening-enrol", args=[screening.pk]), _enrol_post())
    assert "This person is not eligible" in _text(response)
    assert not Participant.objects.exists()


# --- Participant list -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["investigator", "data_manager", "statistician"])
def test_participant_list_hides_the_arm_column_from_blinded_roles(client, walkback: Trial, make_staff, role) -> None:
    walking = Arm.objects.get(trial=walkback, code="walking")
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walking)
    client.force_login(make_staff(role))
    html = _text(client.get(reverse("participant-list")))
    assert 'data-testid="participant-row"' in html
    assert 'data-testid="arm-column"' not in html
    assert all(name not in html for name in ARM_NAMES)


def test_participant_list_shows_the_arm_column_to_coordinators(client, walkback: Trial, make_staff) -> None:
    walking = Arm.objects.get(trial=walkback, code="walking")
    syd = walkback.sites.get(code="SYD")
    ParticipantFactory(site=syd, randomised_to=walking)
    ParticipantFactory(site=syd)  # not yet randomised: an empty cell
    ParticipantFactory(site=walkback.sites.get(code="BNE"), randomised_to=walking)
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    response = client.get(reverse("participant-list"))
    table = _text(response).split('data-testid="participants-table"')[1].split("</table>")[0]
    assert 'data-testid="arm-column"' in table
    assert table.count(walking.name) == 1
    assert response.context["page"].paginator.count == 2


def test_participant_list_flags_consent_under_an_old_version(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    _enrolled(walkback, coordinator)
    client.force_login(coordinator)
    assert 'data-testid="reconsent-flag"' not in _text(client.get(reverse("participant-list")))
    services.consent_document_publish(trial=walkback, version="2.0", title="Consent form, amended")
    assert 'data-testid="reconsent-flag"' in _text(client.get(reverse("participant-list")))


def test_participant_list_keeps_its_query_count_as_participants_grow(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    arm = walkback.arms.first()
    syd = walkback.sites.get(code="SYD")
    ParticipantFactory.create_batch(3, site=syd, randomised_to=arm)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("participant-list")).context["page"].paginator.count == 3
    ParticipantFactory.create_batch(27, site=syd, randomised_to=arm)
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("participant-list"))
    assert response.context["page"].paginator.count == 30
    assert len(many) == len(few)


def test_participant_list_filters_by_status_and_study_id(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    first = _enrolled(walkback, coordinator)
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.first())
    client.force_login(coordinator)
    enrolled = client.get(reverse("participant-list"), {"status": "enrolled"}).context["page"]
    assert [p.study_id for p in enrolled] == [first.study_id]
    assert [p.study_id for p in client.get(reverse("participant-list"), {"q": "syd-0001"}).context["page"]] == ["WB-SYD-0001"]


def test_participant_list_pages_keep_the_filters(client, walkback: Trial, make_staff) -> None:
    ParticipantFactory.create_batch(51, site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.first())
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    response = client.get(reverse("participant-list"), {"status": "randomised"})
    assert len(response.context["page"]) == 50
    assert "?status=randomised&amp;page=2" in _text(response)
    assert len(client.get(reverse("participant-list"), {"status": "randomised", "page": 2}).context["page"]) == 1


# --- Participant detail ---------------------------------------------------------------------


def test_a_participant_at_another_site_is_not_found(client, walkback: Trial, make_staff) -> None:
    participant = ParticipantFactory(site=walkback.sites.get(code="BNE"))
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get(reverse("participant-detail", args=[participant.pk])).status_code == 404
    assert client.post(reverse("participant-randomise", args=[participant.pk])).status_code == 404


def test_detail_shows_status_strata_consent_timeline_and_history_link(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)
    client.force_login(coordinator)
    html = _text(client.get(reverse("participant-detail", args=[participant.pk])))
    assert ">WB-SYD-0001</h1>" in html
    assert ">Enrolled</span>" in html.split('data-testid="participant-status"')[1][:40]
    assert "Community advertising" in html
    consents = html.split('data-testid="consents"')[1].split("</table>")[0]
    assert "v1.0" in consents and "In person" in consents
    timeline = html.split('data-testid="timeline"')[1].split("</ol>")[0]
    assert ["Screened" in timeline, "Consented" in timeline, "Enrolled" in timeline, "Randomised" in timeline] == [
        True,
        True,
        True,
        False,
    ]
    assert reverse("record-history", args=["participants", "participant", participant.pk]) in html
    assert 'data-testid="arm"' in html and "Not randomised yet" in html
    assert 'data-testid="randomise-button"' in html


def test_contact_details_are_not_shown_to_an_investigator(client, walkback: Trial, make_staff) -> None:
    participant = _enrolled(walkback, make_staff("coordinator", sites=["SYD"]))
    client.force_login(make_staff("investigator"))
    html = _text(client.get(reverse("participant-detail", args=[participant.pk])))
    assert "WB-SYD-0001" in html
    assert "sam@example.org" not in html
    assert 'data-testid="contact"' not in html


def test_reconsent_under_the_current_version_clears_the_warning(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)
    services.consent_document_publish(trial=walkback, version="2.0", title="Consent form, amended")
    client.force_login(coordinator)
    url = reverse("participant-detail", args=[participant.pk])
    assert 'data-testid="reconsent-warning"' in _text(client.get(url))

    refused = client.post(reverse("participant-reconsent", args=[participant.pk]), {"method": "video", "signed_name": ""})
    assert "The participant types their name to sign." in _text(refused)
    assert participant.consents.count() == 1

    response = client.post(
        reverse("participant-reconsent", args=[participant.pk]), {"method": "video", "signed_name": "Sam Example"}, follow=True
    )
    assert "Re-consent recorded under v2.0." in _text(response)
    assert 'data-testid="reconsent-warning"' not in _text(response)
    assert participant.consents.latest("consented_at").document.version == "2.0"
    timeline = _text(response).split('data-testid="timeline"')[1].split("</ol>")[0]
    assert "Consented (v1.0)" in timeline and "Re-consented (v2.0)" in timeline


# --- Randomisation --------------------------------------------------------------------------


def test_randomise_via_the_page_shows_the_arm_then_refuses_a_second_time(client, walkback: Trial, make_staff) -> None:
    randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=8, by="test")
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)
    client.force_login(coordinator)
    url = reverse("participant-randomise", args=[participant.pk])
    confirm = _text(client.get(url))
    assert 'data-testid="randomise-confirm"' in confirm
    assert 'data-testid="randomise-missing"' not in confirm

    response = client.post(url, follow=True)

    allocation = Allocation.objects.get(participant=participant)
    html = _text(response)
    assert f"WB-SYD-0001 is randomised to: {allocation.arm.name}." in html
    assert html.split('data-testid="arm"')[1].split("</div>")[0].endswith(allocation.arm.name)
    assert ">Randomised</span>" in html.split('data-testid="participant-status"')[1][:40]
    assert 'data-testid="randomise-button"' not in html

    again = client.post(url, follow=True)
    assert "was already randomised" in _text(again)
    assert Allocation.objects.filter(participant=participant).count() == 1
    assert Allocation.objects.get(participant=participant).pk == allocation.pk


def test_the_randomise_page_says_what_is_missing(client, walkback: Trial, make_staff) -> None:
    randomisation_list_generate(trial=walkback, seed=SEED, per_stratum=8, by="test")
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"))  # no screening, consent or strata
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    url = reverse("participant-randomise", args=[participant.pk])
    missing = _text(client.get(url)).split('data-testid="randomise-missing"')[1].split("</div>")[0]
    assert "consent is not recorded" in missing
    assert "Referral method" in missing

    response = client.post(url, follow=True)
    assert "Not ready to randomise" in _text(response)
    assert not Allocation.objects.exists()


def test_an_exhausted_list_is_reported_and_nobody_is_allocated(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)  # no list was generated
    client.force_login(coordinator)
    response = client.post(reverse("participant-randomise", args=[participant.pk]), follow=True)
    assert "exhausted" in _text(response)
    assert not Allocation.objects.exists()
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ENROLLED


# --- Withdrawal -----------------------------------------------------------------------------


def test_the_withdrawal_form_records_a_withdrawal(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)
    client.force_login(coordinator)
    url = reverse("participant-withdraw", args=[participant.pk])
    assert "Stop follow-up" in _text(client.get(url))
    yesterday = timezone.localdate() - dt.timedelta(days=1)

    response = client.post(
        url, {"scope": "followup", "reason": "Moved overseas", "withdrawn_on": yesterday.isoformat()}, follow=True
    )

    assert "Withdrawal of WB-SYD-0001 recorded." in _text(response)
    assert ">Withdrawn</span>" in _text(response).split('data-testid="participant-status"')[1][:40]
    assert "Moved overseas" in _text(response).split('data-testid="withdrawals"')[1]
    withdrawal = Withdrawal.objects.get(participant=participant)
    assert (withdrawal.scope, withdrawal.reason, withdrawal.withdrawn_on, withdrawal.recorded_by) == (
        "followup",
        "Moved overseas",
        yesterday,
        coordinator,
    )
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.WITHDRAWN

    narrower = client.post(url, {"scope": "intervention", "reason": "Again", "withdrawn_on": yesterday.isoformat()})
    assert "has already withdrawn" in _text(narrower)
    assert Withdrawal.objects.count() == 1


def test_a_withdrawal_without_a_reason_is_refused(client, walkback: Trial, make_staff) -> None:
    coordinator = make_staff("coordinator", sites=["SYD"])
    participant = _enrolled(walkback, coordinator)
    client.force_login(coordinator)
    response = client.post(reverse("participant-withdraw", args=[participant.pk]), {"scope": "intervention", "reason": "  "})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert not Withdrawal.objects.exists()


# --- Emergency unblinding -------------------------------------------------------------------


def test_an_investigator_unblinds_with_their_password_and_then_sees_that_arm_only(client, walkback: Trial, make_staff) -> None:
    walking = Arm.objects.get(trial=walkback, code="walking")
    syd = walkback.sites.get(code="SYD")
    target = ParticipantFactory(site=syd, randomised_to=walking)
    other = ParticipantFactory(site=syd, randomised_to=walking)
    investigator = make_staff("investigator")
    client.force_login(investigator)
    detail = reverse("participant-detail", args=[target.pk])
    before = _text(client.get(detail))
    assert walking.name not in before
    assert 'data-testid="unblind-button"' in before

    url = reverse("participant-unblind", args=[target.pk])
    wrong = client.post(url, {"reason": "Severe adverse event", "password": "not-my-password"})
    assert wrong.status_code == 200
    assert "The password is not right; nothing was unblinded." in _text(wrong)
    assert wrong.context["form"].errors["password"] == ["Not right."]
    assert walking.name not in _text(wrong)
    assert not Unblinding.objects.exists()

    response = client.post(url, {"reason": "Severe adverse event", "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == detail
    html = _text(response)
    assert html.split('data-testid="arm"')[1].split("</div>")[0].endswith(walking.name)
    assert 'data-testid="unblind-button"' not in html
    unblinding = Unblinding.objects.get()
    assert (unblinding.participant, unblinding.user, unblinding.reason) == (target, investigator, "Severe adverse event")
    assert walking.name not in _text(client.get(reverse("participant-detail", args=[other.pk])))
    assert walking.name not in _text(client.get(reverse("participant-list")))


def test_a_coordinator_who_sees_arms_gets_no_unblinding(client, walkback: Trial, make_staff) -> None:
    participant = ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.first())
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert 'data-testid="unblind-button"' not in _text(client.get(reverse("participant-detail", args=[participant.pk])))
    assert client.get(reverse("participant-unblind", args=[participant.pk])).status_code == 403


def test_a_late_page_of_the_list_computes_its_columns_for_its_own_rows_only(client, walkback: Trial, make_staff) -> None:
    ParticipantFactory.create_batch(55, site=walkback.sites.get(code="SYD"), randomised_to=walkback.arms.first())
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    every = sorted(Participant.objects.values_list("study_id", flat=True))
    client.get(reverse("participant-list"))
    with CaptureQueriesContext(connection) as first:
        client.get(reverse("participant-list"))
    with CaptureQueriesContext(connection) as late:
        response = client.get(reverse("participant-list"), {"page": 2})
    assert [p.study_id for p in response.context["page"]] == every[50:]
    assert len(late) == len(first)
    # The page is cut before the per-row columns (consent version, strata) are computed.
    assert not any("OFFSET" in q["sql"] and "consent_version" in q["sql"] for q in late.captured_queries)
    backwards = client.get(reverse("participant-list"), {"page": 2, "sort": "-study_id"}).context["page"]
    assert [p.study_id for p in backwards] == every[:5][::-1]
