"""The CONSORT report: counts that add up, by arm only for roles that see arms, as a page with an
SVG diagram and a table, as CSV and in the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from console import reports
from intervention.models import Session, SessionStatus
from participants import services as journey
from participants.models import Participant, WithdrawalScope
from tests.factories import ELIGIBLE
from trial.models import Trial


@pytest.fixture
def world(walkback: Trial, coordinator: Any, sealed_list: Any, enrol: Any, make_staff: Any) -> dict[str, Any]:
    """11 screened: 2 not eligible, 1 declined, 1 eligible not enrolled, 1 enrolled not randomised,
    6 randomised (one withdrew from follow-up, one stopped the intervention only)."""
    syd = walkback.sites.get(code="SYD")
    journey.screening_record(site=syd, answers={**ELIGIBLE, "age_18_plus": False}, by=coordinator)
    journey.screening_record(site=syd, answers={**ELIGIBLE, "age_18_plus": False, "able_to_walk": False}, by=coordinator)
    declined = journey.screening_record(site=syd, answers=ELIGIBLE, by=coordinator)
    journey.screening_decline(screening=declined, reason="No time", by=coordinator)
    journey.screening_record(site=syd, answers=ELIGIBLE, by=coordinator)
    enrol()  # enrolled, never randomised
    randomised = [enrol() for _ in range(6)]
    for participant in randomised:
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    physio = make_staff("physiotherapist", sites=["SYD"], username="physio")
    walkers = [p for p in randomised if p.sessions.exists()]
    first = Session.objects.filter(participant=walkers[0], number=1)
    start = timezone.now()
    first.update(
        status=SessionStatus.ATTENDED,
        starts_at=start,
        ends_at=start + dt.timedelta(hours=1),
        physiotherapist=physio,
        mode="phone",
    )
    journey.participant_withdraw(participant=randomised[0], scope=WithdrawalScope.FOLLOWUP, reason="Moved away", by=coordinator)
    journey.participant_withdraw(participant=walkers[-1], scope=WithdrawalScope.INTERVENTION, reason="Too busy", by=coordinator)
    return {"randomised": randomised, "walkers": walkers}


def test_the_flow_adds_up_and_the_arms_add_up_to_the_pool(world: dict[str, Any], walkback: Trial, coordinator: Any) -> None:
    consort = reports.consort_counts(trial=walkback, user=coordinator)
    assert consort.assessed == 11
    assert consort.excluded == {"not_eligible": 2, "declined": 1, "not_randomised": 2}
    assert consort.ineligible_by_criterion["age_18_plus"] == 2 and consort.ineligible_by_criterion["able_to_walk"] == 1
    assert consort.assessed == consort.excluded_total + consort.randomised == 5 + 6
    assert (consort.withdrawn, consort.withdrawn_by_reason) == (1, {"followup": 1, "consent": 0})
    assert consort.analysed + consort.excluded_from_analysis == consort.randomised
    assert consort.arms is not None
    for name in ("withdrawn", "lost_to_follow_up", "analysed", "excluded_from_analysis"):
        assert sum(getattr(arm, name) for arm in consort.arms) == getattr(consort, name), name
    assert sum(arm.allocated for arm in consort.arms) == 6
    by_code = {arm.code: arm for arm in consort.arms}
    assert by_code["walking"].allocated == len(world["walkers"])
    assert (by_code["walking"].received_intervention, by_code["control"].received_intervention) == (1, 0)
    assert (by_code["walking"].discontinued_intervention, by_code["control"].discontinued_intervention) == (1, 0)


def test_blinded_roles_get_the_pooled_flow_and_nothing_about_the_intervention(
    world: dict[str, Any], walkback: Trial, make_staff: Any, coordinator: Any, api: Any, client: Any
) -> None:
    statistician = make_staff("statistician")
    api.force_authenticate(statistician)
    body = api.get("/api/v1/reports/consort/").json()
    assert "arms" not in body
    assert "intervention" not in str(body)
    assert body["randomised"] == 6 and body["withdrawn"] == 1
    pooled = {k: v for k, v in reports.consort_counts(trial=walkback, user=coordinator).as_api().items() if k != "arms"}
    assert body == pooled  # the same pooled numbers as an unblinded role's
    client.force_login(statistician)
    page = client.get(reverse("report-consort")).content.decode()
    assert "Allocated to" not in page and "Walking" not in page and "Pooled: blinded to allocation" in page


def test_the_page_draws_an_accessible_diagram_with_the_numbers_as_a_table(
    world: dict[str, Any], coordinator: Any, client: Any
) -> None:
    client.force_login(coordinator)
    response = client.get(reverse("report-consort"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="img"' in page and 'aria-labelledby="consort-title consort-desc"' in page
    assert "Assessed for eligibility (n = 11)" in page
    assert "Allocated to Walking and education programme" in page
    assert '<caption class="visually-hidden">' in page and 'data-testid="consort-randomised">6<' in page
    api_counts = client.get("/api/v1/reports/consort/").json()
    assert {arm["code"] for arm in api_counts["arms"]} == {"walking", "control"}


def test_the_numbers_download_as_csv(world: dict[str, Any], coordinator: Any, client: Any) -> None:
    client.force_login(coordinator)
    response = client.get(reverse("report-consort-csv"))
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    pooled = {(r["count"], r["reason"]): int(r["n"]) for r in rows if not r["arm"]}
    assert pooled[("assessed", "")] == 11 and pooled[("randomised", "")] == 6 and pooled[("excluded", "declined")] == 1
    assert sum(int(r["n"]) for r in rows if r["count"] == "allocated") == 6


def test_site_staff_see_their_own_sites_only(world: dict[str, Any], walkback: Trial, make_staff: Any) -> None:
    elsewhere = make_staff("coordinator", sites=["GCT"], username="gold-coast")
    consort = reports.consort_counts(trial=walkback, user=elsewhere)
    assert (consort.assessed, consort.randomised) == (0, 0)
    assert Participant.objects.filter(randomised_at__isnull=False).count() == 6


def test_the_grid_shows_each_questionnaire_status_with_sessions_only_for_roles_that_see_arms(
    world: dict[str, Any], walkback: Trial, coordinator: Any, make_staff: Any, client: Any
) -> None:
    from followup.models import Occurrence, OccurrenceStatus

    walker = world["walkers"][0]
    Occurrence.objects.filter(participant=walker, instrument="monthly", month=1).update(status=OccurrenceStatus.MISSED)
    client.force_login(coordinator)
    page = client.get(reverse("report-status-grid")).content.decode()
    assert walker.study_id in page and "Sessions" in page
    assert '<span class="visually-hidden">Missed</span>' in page and '<span class="visually-hidden">Attended</span>' in page
    only_missed = client.get(reverse("report-status-grid"), {"status": "missed"})
    assert [row.participant for row in only_missed.context["rows"]] == [walker]
    assert client.get(reverse("report-status-grid"), {"status": "nonsense", "site": "NOPE"}).status_code == 200
    statistician = make_staff("statistician")
    client.force_login(statistician)
    blinded = client.get(reverse("report-status-grid"))
    assert "Sessions" not in blinded.content.decode() and "Attended" not in blinded.content.decode()
    assert len(blinded.context["rows"]) == 6


def test_the_grid_reads_a_page_in_constant_queries_and_downloads_every_row(
    world: dict[str, Any], coordinator: Any, client: Any, django_assert_max_num_queries: Any, enrol: Any
) -> None:
    client.force_login(coordinator)
    client.get(reverse("report-status-grid"))  # warm the per-request caches
    with django_assert_max_num_queries(20) as few:
        client.get(reverse("report-status-grid"))
    for _ in range(4):
        journey.participant_randomise(participant_id=enrol().pk, by=coordinator)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("report-status-grid"))
    assert len(response.context["rows"]) == 10
    lines = b"".join(client.get(reverse("report-status-grid-csv")).streaming_content).decode().splitlines()
    assert lines[0].startswith("study_id,site,baseline_0,monthly_1") or lines[0].startswith("study_id,site,monthly_1")
    assert len(lines) == 11 and "session_1" in lines[0]


def test_the_dashboard_charts_recruitment_screening_and_completion_with_their_numbers(
    world: dict[str, Any], walkback: Trial, coordinator: Any, client: Any, make_staff: Any
) -> None:
    from console import progress
    from followup.models import Occurrence, OccurrenceStatus

    walker = world["walkers"][0]
    Occurrence.objects.filter(participant=walker, instrument="monthly", month=1).update(status=OccurrenceStatus.MISSED)
    months = progress.recruitment_by_month(trial=walkback, user=coordinator)
    assert months[0].month == walkback.recruitment_start.replace(day=1)
    assert months[-1].cumulative == 6 and sum(m.randomised for m in months) == 6
    assert [m.target for m in months] == sorted(m.target for m in months) and months[-1].target <= walkback.recruitment_target
    assert [(s.label, s.n) for s in progress.screening_funnel(trial=walkback, user=coordinator)] == [
        ("Screened", 11),
        ("Eligible", 9),
        ("Consented and enrolled", 7),
        ("Randomised", 6),
    ]
    assert [
        (c.month, c.completed, c.closed, c.percent) for c in progress.followup_completion(trial=walkback, user=coordinator)
    ] == [(1, 0, 1, 0)]
    client.force_login(coordinator)
    page = client.get(reverse("dashboard")).content.decode()
    for chart in ("chart-recruitment", "chart-funnel", "chart-completion"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in page
    assert "6 randomised by" in page and 'data-testid="recruitment-table"' in page
    assert "questionnaires overdue" in page and reverse("followup-worklist") in page
    statistician = make_staff("statistician")
    client.force_login(statistician)
    blinded = client.get(reverse("dashboard")).content.decode()
    assert "questionnaires overdue" not in blinded  # the statistician does not chase questionnaires


def test_the_open_report_for_the_monitoring_committee_is_pooled_for_every_role(
    world: dict[str, Any], walkback: Trial, coordinator: Any, client: Any
) -> None:
    from safety.models import AdverseEvent

    walker = world["walkers"][0]
    now = timezone.now()
    AdverseEvent.objects.create(
        participant=walker,
        source="staff",
        status="pending",
        category="lower_extremity",
        serious=True,
        serious_since=now,
        aware_at=now,
        reported_by=coordinator,
    )
    client.force_login(coordinator)  # sees arms elsewhere, but this report is open
    response = client.get(reverse("report-dmc"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Walking and education programme" not in page and "Allocated to" not in page
    assert "6 of 701 participants randomised" in page
    safety = response.context["safety"]
    assert [(r.category, r.events, r.serious, r.participants) for r in safety] == [("Lower extremity", 1, 1, 1)]
    assert 'class="navbar navbar-expand-md navbar-dark bg-primary mb-3 d-print-none"' in page


def test_lost_to_follow_up_is_the_worklists_rule_counted_by_arm_and_pooled(
    world: dict[str, Any], walkback: Trial, coordinator: Any, make_staff: Any
) -> None:
    from followup.models import OutcomeSummary
    from followup.selectors import lost_to_followup_list

    walker, withdrawn = world["walkers"][0], world["randomised"][0]  # randomised[0] withdrew from follow-up
    summaries = OutcomeSummary.objects.filter(participant__in=[walker, withdrawn])
    assert summaries.count() == 2  # written at randomisation
    summaries.update(missed_in_a_row=3, last_missed_due=dt.date(2026, 5, 2))  # three monthly ones missed in a row

    flow = reports.consort_counts(trial=walkback, user=coordinator)
    assert flow.lost_to_follow_up == 1 == lost_to_followup_list(user=coordinator, trial=walkback).count()
    assert flow.arms is not None
    assert {arm.code: arm.lost_to_follow_up for arm in flow.arms} == {"walking": 1, "control": 0}
    pooled = reports.consort_counts(trial=walkback, user=make_staff("statistician", username="stat-lost"))
    assert pooled.lost_to_follow_up == 1 and pooled.arms is None
