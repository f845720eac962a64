from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import ParticipantFactory
from trial.models import Arm, SecurityEvent, SecurityEventKind, Trial


def test_login_page_uses_our_own_bootstrap(client, walkback: Trial) -> None:
    html = client.get(reverse("login")).content.decode()
    assert "/static/vendor/bootstrap-5.3.8/bootstrap.min" in html
    assert "cdn" not in html.lower()
    assert 'name="viewport"' in html


def test_dashboard_requires_login(client, walkback: Trial) -> None:
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("role", "sites", "nav_present", "nav_absent"),
    [
        ("coordinator", ["SYD"], ["Dashboard", "Agenda"], ["Audit trail", "Configuration"]),
        ("physiotherapist", ["SYD"], ["Dashboard"], ["Audit trail", "Configuration"]),
        ("investigator", [], ["Dashboard", "Audit trail"], ["Configuration"]),
        ("data_manager", [], ["Dashboard", "Audit trail"], ["Configuration"]),
        ("statistician", [], ["Dashboard"], ["Audit trail", "Configuration", "Agenda"]),
        ("admin", [], ["Dashboard", "Audit trail", "Configuration"], []),
    ],
)
def test_each_role_sees_its_navigation(client, make_staff, role, sites, nav_present, nav_absent) -> None:
    client.force_login(make_staff(role, sites=sites))
    html = client.get(reverse("dashboard")).content.decode()
    nav = html.split('id="mainnav"')[1].split("</ul>")[0]
    for label in nav_present:
        assert f">{label}</a>" in nav
    for label in nav_absent:
        assert f">{label}</a>" not in nav


def test_site_staff_see_only_their_sites_counts(client, walkback: Trial, make_staff) -> None:
    ParticipantFactory.create_batch(3, site=walkback.sites.get(code="SYD"))
    ParticipantFactory.create_batch(2, site=walkback.sites.get(code="BNE"))
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    response = client.get(reverse("dashboard"))
    sites = [row.site.code for row in response.context["counts"]]
    assert sites == ["SYD"]
    assert response.context["totals"]["participants"] == 3
    assert "Brisbane" not in response.content.decode().split('data-testid="sites-table"')[1].split("</table>")[0]


def test_blinded_roles_get_no_counts_by_arm(client, walkback: Trial, make_staff) -> None:
    walking = Arm.objects.get(trial=walkback, code="walking")
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walking)

    client.force_login(make_staff("investigator"))
    blinded = client.get(reverse("dashboard"))
    table = blinded.content.decode().split('data-testid="sites-table"')[1].split("</table>")[0]
    assert walking.name not in table
    assert all(row.by_arm is None for row in blinded.context["counts"])
    assert "Blinded to allocation" in blinded.content.decode()

    client.force_login(make_staff("coordinator", sites=["SYD"]))
    unblinded = client.get(reverse("dashboard"))
    table = unblinded.content.decode().split('data-testid="sites-table"')[1].split("</table>")[0]
    assert walking.name in table
    assert unblinded.context["counts"][0].by_arm == {walking.name: 1, "No intervention (control)": 0}


def test_dashboard_queries_stay_constant_as_participants_grow(client, walkback: Trial, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD", "NCL"]))
    arm = walkback.arms.first()
    ParticipantFactory.create_batch(2, site=walkback.sites.get(code="SYD"), randomised_to=arm)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("dashboard"))
    ParticipantFactory.create_batch(40, site=walkback.sites.get(code="NCL"), randomised_to=arm)
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("dashboard")).context["totals"]["randomised"] == 42
    assert len(many) == len(few)


def test_audit_page_is_for_roles_that_may_read_the_trail(client, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get(reverse("audit-log")).status_code == 403
    client.force_login(make_staff("data_manager"))
    response = client.get(reverse("audit-log"), {"kind": "login"})
    assert response.status_code == 200


def test_password_change_works_and_is_audited(client, make_staff, password) -> None:
    user = make_staff("physiotherapist", sites=["SYD"])
    client.force_login(user)
    response = client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": "a-much-better-passphrase", "new_password2": "a-much-better-passphrase"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-much-better-passphrase")
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.PASSWORD_CHANGED, user=user).exists()


def test_admin_is_for_administrators_only(client, make_staff) -> None:
    client.force_login(make_staff("coordinator", sites=["SYD"]))
    assert client.get("/admin/trial/arm/").status_code == 302  # to the admin login
    client.force_login(make_staff("admin"))
    assert client.get("/admin/trial/arm/").status_code == 200


def test_admin_refuses_a_ratio_change_after_randomisation_with_a_message(client, walkback: Trial, make_staff) -> None:
    walking = walkback.arms.get(code="walking")
    ParticipantFactory(site=walkback.sites.get(code="SYD"), randomised_to=walking)
    client.force_login(make_staff("admin"))
    url = f"/admin/trial/arm/{walking.pk}/change/"
    response = client.post(
        url,
        {"trial": walkback.pk, "code": "walking", "name": walking.name, "description": "", "ratio": 2, "order": 0},
        follow=True,
    )
    assert "already been randomised" in response.content.decode()
    walking.refresh_from_db()
    assert walking.ratio == 1


def test_admin_changes_a_role_through_the_service_with_a_reason(client, make_staff) -> None:
    admin = make_staff("admin")
    physio = make_staff("physiotherapist", sites=["SYD"])
    client.force_login(admin)
    url = f"/admin/trial/staffprofile/{physio.staff.pk}/change/"
    sites = {s.code: s.pk for s in physio.staff.sites.model.objects.all()}

    missing_reason = client.post(url, {"role": "admin", "sites": [sites["SYD"]], "timezone": ""})
    assert missing_reason.status_code == 200  # the form shows the error
    physio.staff.refresh_from_db()
    assert physio.staff.role == "physiotherapist"

    client.post(url, {"role": "admin", "sites": [sites["NCL"]], "timezone": "", "reason": "Now runs the system"})
    physio.refresh_from_db()
    assert physio.staff.role == "admin"
    assert physio.is_staff and not physio.is_superuser  # admin is a configuration role, never a superuser
    event = SecurityEvent.objects.filter(kind=SecurityEventKind.ROLE_CHANGED, username=physio.username).latest("created_at")
    assert event.detail["reason"] == "Now runs the system"
    assert event.user == admin


def test_admin_publishes_a_consent_version_and_cannot_edit_a_published_one(client, walkback: Trial, make_staff) -> None:
    from participants.models import ConsentDocument

    client.force_login(make_staff("admin"))
    response = client.post(
        "/admin/participants/consentdocument/add/",
        {"trial": walkback.pk, "version": "2.0", "title": "PICF v2", "body": "New wording"},
    )
    assert response.status_code == 302
    assert ConsentDocument.objects.filter(version="2.0").exists()
    v1 = ConsentDocument.objects.get(version="1.0")
    client.post(
        f"/admin/participants/consentdocument/{v1.pk}/change/", {"trial": walkback.pk, "version": "1.0", "title": "Edited"}
    )
    v1.refresh_from_db()
    assert v1.title != "Edited"


def test_randomisation_slots_are_not_in_admin(client, make_staff) -> None:
    client.force_login(make_staff("admin"))
    index = client.get("/admin/").content.decode().lower()
    assert "randomisation slot" not in index and "allocation" not in index
    assert client.get("/admin/trial/randomisationslot/").status_code == 404
