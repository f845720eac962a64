"""Safety pages: record an adverse event, review or dismiss pending reports, follow up, change with a
reason; the safety overview with deadlines, and events by arm only for roles that see allocations."""

# ruff: noqa: F811 - pytest fixtures imported from other test modules are redefined as arguments
from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intervention.models import Session
from safety.models import AdverseEvent, AEFollowUp, AEStatus
from safety.services import adverse_event_record
from tests.safety.test_safety import randomised, sae_emails, serious  # noqa: F401
from tests.safety.test_safety_api import _rename_arms, pending_report, physio, walker  # noqa: F401
from trial.models import Trial


def text(response: Any) -> str:
    return response.content.decode()


def section(html: str, testid: str) -> str:
    return html.split(f'data-testid="{testid}"', 1)[1]


def form_post(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "onset_date": "2026-03-20",
        "description": "Fractured ankle after a fall on stairs",
        "category": "lower_extremity",
        "severity": "severe",
        "serious": "on",
        "serious_criteria": ["hospitalisation"],
        "relatedness": "possibly",
        "expected": "no",
        "action_taken": "Programme paused",
        "outcome": "recovering",
        "resolution_date": "",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def mild_post(**changes: Any) -> dict[str, Any]:
    return form_post(serious=None, serious_criteria=None, severity="mild", category="back", description="Stiff back", **changes)


@pytest.mark.parametrize(
    ("role", "sites", "sees"),
    [
        ("coordinator", ["SYD"], True),
        ("physiotherapist", ["SYD"], True),
        ("investigator", [], True),
        ("data_manager", [], True),
        ("statistician", [], False),
    ],
)
def test_the_safety_pages_are_for_roles_that_report_adverse_events(client, make_staff, role, sites, sees) -> None:
    client.force_login(make_staff(role, sites=sites))
    nav = text(client.get(reverse("dashboard"))).split('id="mainnav"')[1].split("</ul>")[0]
    assert (">Safety</a>" in nav) is sees
    expected = 200 if sees else 403
    assert client.get(reverse("safety-overview")).status_code == expected
    assert client.get(reverse("adverse-event-list")).status_code == expected


# --- Recording ----------------------------------------------------------------------------------


def test_a_serious_event_recorded_on_the_page_emails_the_safety_contact_once(
    client, randomised, coordinator, django_capture_on_commit_callbacks
) -> None:
    client.force_login(coordinator)
    url = reverse("adverse-event-new", args=[randomised.pk])
    form = text(client.get(url))
    assert "Lower extremity" in form and "Other musculoskeletal" in form  # the trial's categories
    assert 'name="serious_criteria"' in form and "Hospitalisation or its prolongation" in form
    assert 'id="div_id_serious_criteria"' in form  # hidden by the page's script until "serious" is ticked

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form_post(), follow=True)

    event = AdverseEvent.objects.get()
    assert response.redirect_chain[-1][0] == reverse("adverse-event-detail", args=[event.pk])
    assert (event.serious, event.serious_criteria, event.expected, event.reported_by) == (
        True,
        ["hospitalisation"],
        False,
        coordinator,
    )
    page = text(response)
    assert "safety contacts are alerted" in page and 'data-testid="serious-flag"' in page
    assert 'data-testid="initial-met"' in page and 'data-testid="followup-open"' in page
    assert f'href="/history/safety/adverseevent/{event.pk}/"' in page
    assert client.get(f"/history/safety/adverseevent/{event.pk}/").status_code == 200
    # The address it had before adverse events had an app of their own still leads to it.
    moved = client.get(f"/history/participants/adverseevent/{event.pk}/")
    assert (moved.status_code, moved["Location"]) == (301, f"/history/safety/adverseevent/{event.pk}/")
    assert len(sae_emails()) == 1


def test_an_incomplete_event_is_pointed_out_and_nothing_is_written(client, randomised, coordinator) -> None:
    client.force_login(coordinator)
    response = client.post(
        reverse("adverse-event-new", args=[randomised.pk]),
        form_post(description="", category="", serious_criteria=None, onset_date="2099-01-01"),
    )
    assert response.status_code == 400
    page = text(response)
    assert "The adverse event needs your attention." in page
    errors = response.context["form"].errors
    assert errors["onset_date"] == ["In the future."]
    assert {"description", "category", "serious_criteria"} <= set(errors)
    assert not AdverseEvent.objects.exists()


def test_a_participant_out_of_reach_is_not_found(client, randomised, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["BNE"], username="bne"))
    assert client.get(reverse("adverse-event-new", args=[randomised.pk])).status_code == 404
    assert client.post(reverse("adverse-event-new", args=[randomised.pk]), form_post()).status_code == 404
    assert not AdverseEvent.objects.exists()


# --- Pending reports ----------------------------------------------------------------------------


def test_a_pending_report_is_listed_first_and_completed_by_a_review(client, randomised, coordinator) -> None:
    adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    report = pending_report(randomised, "Sore knee for a week")
    client.force_login(coordinator)

    listing = text(client.get(reverse("adverse-event-list")))
    assert listing.index('data-testid="pending-reports"') < listing.index('data-testid="events-table"')
    assert "Sore knee for a week" in section(listing, "pending-reports").split("</ul>")[0]

    detail = text(client.get(reverse("adverse-event-detail", args=[report.pk])))
    assert 'data-testid="review-button"' in detail and 'data-testid="dismiss-form"' in detail
    assert 'data-testid="followup-form"' not in detail

    edit_url = reverse("adverse-event-edit", args=[report.pk])
    edit = client.get(edit_url)
    assert "Sore knee for a week" in text(edit) and "Complete the report" in text(edit)
    assert edit.context["form"].initial["description"] == "Sore knee for a week"

    no_reason = client.post(edit_url, mild_post())
    assert no_reason.status_code == 400 and "reason" in no_reason.context["form"].errors
    report.refresh_from_db()
    assert report.status == AEStatus.PENDING

    done = client.post(edit_url, mild_post(reason="Phoned the participant: sore knee, settling"), follow=True)
    report.refresh_from_db()
    assert (report.status, report.category, report.reported_by) == (AEStatus.OPEN, "back", coordinator)
    assert "Report completed." in text(done)
    assert 'data-testid="followup-form"' in text(done)


def test_a_pending_report_is_dismissed_with_a_reason(client, randomised, coordinator) -> None:
    report = pending_report(randomised, "Headache")
    client.force_login(coordinator)
    url = reverse("adverse-event-dismiss", args=[report.pk])

    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 400 and "Say why it is not an adverse event." in text(refused)
    report.refresh_from_db()
    assert report.status == AEStatus.PENDING

    dismissed = client.post(url, {"reason": "Tension headache, known before the trial"}, follow=True)
    report.refresh_from_db()
    assert (report.status, report.dismissed_reason) == (AEStatus.DISMISSED, "Tension headache, known before the trial")
    assert "Tension headache, known before the trial" in section(text(dismissed), "dismissed-reason")

    again = client.post(url, {"reason": "again"})
    assert again.status_code == 409 and "Only a report waiting for review can be dismissed." in text(again)
    assert client.get(reverse("adverse-event-edit", args=[report.pk])).status_code == 302


# --- Follow-ups and changes ---------------------------------------------------------------------


def test_follow_ups_are_added_and_resolve_the_event(client, randomised, coordinator) -> None:
    event = adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    client.force_login(coordinator)
    url = reverse("adverse-event-followup", args=[event.pk])

    missing_date = client.post(url, {"note": "Cast removed", "outcome": "recovered"})
    assert missing_date.status_code == 400
    assert missing_date.context["followup_form"].errors["resolution_date"] == ["When did it resolve?"]
    assert not AEFollowUp.objects.exists()

    response = client.post(url, {"note": "Cast removed", "outcome": "recovered", "resolution_date": "2026-04-10"}, follow=True)
    event.refresh_from_db()
    assert event.status == AEStatus.RESOLVED
    page = text(response)
    assert "Cast removed" in section(page, "followups") and 'data-testid="followup-met"' in page


def test_a_change_needs_a_reason(client, randomised, coordinator) -> None:
    event = adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    client.force_login(coordinator)
    url = reverse("adverse-event-edit", args=[event.pk])
    assert client.get(url).context["form"].initial["serious_criteria"] == ["hospitalisation"]

    refused = client.post(url, form_post(action_taken="Programme stopped"))
    assert refused.status_code == 400 and "reason" in refused.context["form"].errors
    client.post(url, form_post(action_taken="Programme stopped", reason="Physio advised a full stop"))
    event.refresh_from_db()
    assert event.action_taken == "Programme stopped"


# --- Lists and the overview ---------------------------------------------------------------------


def test_the_list_filters_and_keeps_its_query_count_as_rows_grow(client, randomised, coordinator) -> None:
    client.force_login(coordinator)
    adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    pending_report(randomised)
    client.get(reverse("adverse-event-list"))
    reset_queries()
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("adverse-event-list")).context["page"].paginator.count == 2
    for n in range(8):
        adverse_event_record(
            participant=randomised,
            data=serious(serious=n % 2 == 0, serious_criteria=[] if n % 2 else ["hospitalisation"], category="back"),
            by=coordinator,
        )
        pending_report(randomised)
    reset_queries()
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("adverse-event-list"))
    assert response.context["page"].paginator.count == 18
    assert len(many) == len(few)

    def count(**filters: str) -> int:
        return client.get(reverse("adverse-event-list"), filters).context["page"].paginator.count

    assert count(serious="true") == 5 and count(category="back") == 8 and count(status="pending") == 9
    assert count(participant=randomised.study_id) == 18 and count(site="BNE") == 0
    assert count(status="nonsense") == 18  # an invalid filter does not filter
    assert count(participant="9" * 30) == 18


def test_the_overview_counts_deadlines_and_shows_events_by_arm_only_to_unblinded_roles(
    client, randomised, coordinator, make_staff
) -> None:
    adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    adverse_event_record(
        participant=randomised, data=serious(serious=False, serious_criteria=[], category="back"), by=coordinator
    )
    pending_report(randomised)

    client.force_login(coordinator)
    page = text(client.get(reverse("safety-overview")))
    assert ">2<" in section(page, "count-total") and ">1<" in section(page, "count-serious")
    assert ">1<" in section(page, "count-pending")
    initial = section(page, "deadline-initial").split("</tr>")[0]
    assert '<td class="text-end">1</td><td class="text-end">0</td><td class="text-end">0</td>' in initial
    by_arm = section(page, "by-arm").split("</table>")[0]
    assert "Walking and education programme" in by_arm and "No intervention (control)" in by_arm

    client.force_login(make_staff("investigator"))
    blinded = text(client.get(reverse("safety-overview")))
    assert 'data-testid="by-arm"' not in blinded
    assert "Walking and education programme" not in blinded and "No intervention (control)" not in blinded
    assert ">1<" in section(blinded, "count-serious")


def test_a_blinded_investigator_sees_no_arm_on_any_safety_page(client, walker, walkback: Trial, physio, make_staff) -> None:
    session = Session.objects.filter(participant=walker).order_by("number").first()
    event = adverse_event_record(participant=walker, data=serious(), by=physio, session_id=session.pk)
    report = pending_report(walker, "Sore heel")
    words = _rename_arms(walkback)

    client.force_login(make_staff("investigator"))
    pages = [
        reverse("safety-overview"),
        reverse("adverse-event-list"),
        reverse("adverse-event-detail", args=[event.pk]),
        reverse("adverse-event-detail", args=[report.pk]),
        reverse("adverse-event-edit", args=[event.pk]),
        reverse("adverse-event-edit", args=[report.pk]),
        reverse("adverse-event-new", args=[walker.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = text(response).lower()
        assert not [w for w in words if w.lower() in body], url
    detail = text(client.get(reverse("adverse-event-detail", args=[event.pk])))
    assert "Entered by staff" in section(detail, "source").split("</dd>")[0]
    assert session is not None and session.name not in section(detail, "source").split("</dd>")[0]
    # Who reported it would tell (a physiotherapist reports at sessions): every event reads "staff".
    assert physio.username not in detail and 'Recorded by</dt><dd class="col-7 col-sm-8">staff</dd>' in detail
    # Its history opens like any other event's, with the session and the reporter hidden.
    history = client.get(reverse("record-history", args=["safety", "adverseevent", event.pk]))
    assert history.status_code == 200
    assert f"<code>session_id</code>: {session.pk}" not in text(history) and physio.username not in text(history)

    client.force_login(physio)  # who sees the arm also sees the session
    assert "Reported at a session" in text(client.get(reverse("adverse-event-detail", args=[event.pk])))


def test_the_overview_counts_every_serious_event_and_lists_them_a_page_at_a_time(
    client, randomised, coordinator, monkeypatch
) -> None:
    from safety import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for _ in range(3):
        adverse_event_record(participant=randomised, data=serious(), by=coordinator)
    client.force_login(coordinator)
    first = text(client.get(reverse("safety-overview")))
    initial = section(first, "deadline-initial").split("</tr>")[0]
    assert '<td class="text-end">3</td><td class="text-end">0</td><td class="text-end">0</td>' in initial
    rows = lambda page: section(page, "serious-table").split("</table>")[0].count("<tr") - 1  # noqa: E731 - minus the header
    assert rows(first) == 2 and "Page 1 of 2" in first
    second = text(client.get(reverse("safety-overview") + "?page=2"))
    assert rows(second) == 1 and "Page 2 of 2" in second
