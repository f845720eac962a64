"""Dataset releases: built from a lock only, deterministic, complete, de-identified, blinded on request."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import zipfile
import zoneinfo
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from closeout.datalock.services import database_lock, database_unlock
from closeout.models import Release
from closeout.releases import services
from closeout.releases.statfiles import StatColumn, _stamp, write_stat_files
from followup import services as followup
from followup.models import Occurrence, Outcome
from followup.outcomes import episodes
from intervention.models import InterventionPolicy, Prescription, Session, SessionRecord, Walk
from participants import services as journey
from participants.models import Participant
from presets.instrument_library import MONTHLY_EPISODES, RMDQ_CODES
from safety.models import AdverseEvent
from tests.factories import ELIGIBLE
from trial import access
from trial.celery import app
from trial.errors import Conflict, NotAllowed
from trial.models import Role, SecurityEvent, Trial

RANDOMISED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 12:00 in Sydney
MONTH_1 = dt.datetime(2026, 4, 2, 1, 0, tzinfo=dt.UTC)
MONTH_2 = dt.datetime(2026, 5, 4, 1, 0, tzinfo=dt.UTC)
DATE_OF_BIRTH = "1980-03-03"  # 45 at randomisation on 2 March 2026: the 46th birthday is the next day
BASELINE_ANSWERS = {
    "date_of_birth": DATE_OF_BIRTH,
    "sex": "female",
    "height_cm": "175",
    "weight_kg": "80",  # BMI 26.1
    "education": "degree",
    "employment": "full_time",
    "lbp_previous_episodes": "3",
    "lbp_episode_duration": "1_4w",
    "lbp_weeks_since_recovery": "6",
    "pain_now": "1",
    "pain_week_avg": "2",
    **{code: "yes" if n <= 4 else "no" for n, code in enumerate(RMDQ_CODES, start=1)},
    **{code: "1" for code in ("eq5d_mobility", "eq5d_selfcare", "eq5d_activities", "eq5d_pain", "eq5d_anxiety")},
    "eq5d_vas": "80",
    "walking_minutes_week": "90",
    "active_days_week": "2",
}
# Version 2 of the monthly questionnaire: a mild episode, then an activity-limiting one.
TWO_EPISODES = {
    "lbp_any": "yes",
    "ep1_start": "2026-04-10",
    "ep1_24h": "yes",
    "ep1_interference": "1",
    "ep1_pain_avg": "3",
    "ep1_pain_worst": "4",
    "ep1_care_sought": "no",
    "ep1_work_days_missed": "0",
    "ep1_recovered_on": "2026-04-12",
    "ep1_more": "yes",
    "ep2_start": "2026-04-20",
    "ep2_24h": "yes",
    "ep2_interference": "3",
    "ep2_pain_avg": "5",
    "ep2_pain_worst": "8",
    "ep2_care_sought": "yes",
    "ep2_care_from": ["gp", "physiotherapist"],
    "ep2_work_days_missed": "3",
    "ep2_more": "no",
    "new_health_problem": "no",
}
# Each participant's name (typed as their consent signature), e-mail and mobile: none may appear in a release.
PEOPLE = [
    ("Zebulon Quimbleworth", "zebulon.quimbleworth@example.org", "+61491570101", "SYD", "yes", "community"),
    ("Philippa Vantongeren", "p.vantongeren@example.net", "+61491570102", "SYD", "yes", "community"),
    ("Ottilie Brackenbury", "ottilie.b@example.com", "+61491570103", "BNE", "no", "clinician"),
    ("Mortimer Fanshawe", "mortimer.fanshawe@example.org", "+61491570104", "BNE", "no", "community"),
]
# Names written in free-text fields, all of which a release leaves out.
FREE_TEXT_NAMES = [
    "Barnaby Crumplehorn",
    "Cornelius Wetherspoon",
    "Ottoline Pemberton",
    "Hortensia Blenkinsop",
    "Ignatius Fairweather",
    "Leopold Thistlewood",
    "Marigold Featherstone",
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    """Staff accounts hash their passwords quickly here: the releases are under test, not PBKDF2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def statistician(make_staff):  # type: ignore[no-untyped-def]
    return make_staff("statistician", username="stan")


@pytest.fixture
def datamanager(make_staff):  # type: ignore[no-untyped-def]
    return make_staff("data_manager", username="dana")


@pytest.fixture
def releases_dir(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.VAR_DIR = tmp_path
    return tmp_path / "releases"


@pytest.fixture
def dataset(walkback: Trial, coordinator, sealed_list, datamanager, make_staff) -> dict[str, Participant]:  # type: ignore[no-untyped-def]
    """Four randomised participants with answers, outcomes (one adjudicated), a withdrawal, adverse
    events, a screening declined, and the intervention's sessions, prescription and walks; every
    free-text field names somebody."""
    people: dict[str, Participant] = {}
    # Two baselines are answered below (one entered the day before randomisation); the third and
    # fourth participants are randomised without one (empty cells, same rows).
    Trial.objects.filter(pk=walkback.pk).update(baseline_before_randomisation=False)
    with time_machine.travel(RANDOMISED_AT, tick=False):
        declined = journey.screening_record(site=walkback.sites.get(code="SYD"), answers=ELIGIBLE, by=coordinator)
        journey.screening_decline(screening=declined, reason=f"Her husband {FREE_TEXT_NAMES[0]} said no", by=coordinator)
        journey.screening_record(
            site=walkback.sites.get(code="SYD"), answers={**ELIGIBLE, "already_active": True}, by=coordinator
        )
        for name, email, mobile, site, prior, referral in PEOPLE:
            screening = journey.screening_record(
                site=walkback.sites.get(code=site), answers=ELIGIBLE, by=coordinator, referral=referral
            )
            participant = journey.participant_enrol(
                screening=screening,
                consent=journey.ConsentInput(method="in_person", signed_name=name),
                strata={"prior_episodes_gt2": prior},
                contact=journey.ContactInput(email=email, mobile=mobile),
                by=coordinator,
            )
            journey.participant_randomise(participant_id=participant.pk, by=coordinator)
            people[name] = Participant.objects.get(pk=participant.pk)
    first, second, third, fourth = people.values()
    recurrence = {
        "lbp_any": "yes",
        "ep1_24h": "yes",
        "ep1_more": "no",
        "ep1_start": "2026-03-20",
        "ep1_interference": "3",
        "ep1_pain_avg": "5",
        "ep1_pain_worst": "7",
        "ep1_care_sought": "yes",
        "ep1_care_from": ["gp", "other"],
        "ep1_care_from_other": f"Dr {FREE_TEXT_NAMES[1]}",
        "ep1_work_days_missed": "2",
        "new_health_problem": "yes",
        "new_health_problem_details": f"Twisted an ankle at {FREE_TEXT_NAMES[2]}'s place",
    }
    quiet = {"lbp_any": "no", "new_health_problem": "no"}
    for participant, answers in ((first, recurrence), (second, quiet), (third, quiet), (fourth, quiet)):
        occurrence = Occurrence.objects.get(participant=participant, instrument="monthly", month=1)
        followup.response_submit(occurrence=occurrence, raw=answers, source="staff", by=coordinator, now=MONTH_1)
    timepoint = Occurrence.objects.get(participant=first, instrument="timepoint", month=3)
    followup.response_submit(
        occurrence=timepoint,
        raw={
            **{f"rmdq_{n:02d}": "yes" if n <= 5 else "no" for n in range(1, 25)},
            **{code: "2" for code in ("eq5d_mobility", "eq5d_selfcare", "eq5d_activities", "eq5d_pain", "eq5d_anxiety")},
            "eq5d_vas": "70",
            **{code: "1" for code in ("visits_gp", "visits_physio", "visits_specialist", "visits_emergency")},
            "hospital_admission": "no",
            "walking_minutes_week": "150",
        },
        source="staff",
        by=coordinator,
        now=MONTH_1 + dt.timedelta(days=60),
    )
    # An adjudication wins over the derived value: an event the questionnaires did not show.
    outcome = Outcome.objects.get(participant=second, code="any")
    followup.outcome_adjudicate(
        outcome=outcome, event=True, event_date=dt.date(2026, 3, 12), reason="Reported by phone", by=datamanager
    )
    with time_machine.travel(MONTH_1, tick=False):
        journey.participant_withdraw(
            participant=third, scope="followup", reason=f"Moving in with {FREE_TEXT_NAMES[3]}", by=coordinator
        )
    walking = [p for p in people.values() if p.allocation.arm.code == "walking"]
    assert len(walking) == 1, "the test's sealed list gives one of the four the walking arm"
    active = walking[0]
    physio = make_staff("physiotherapist", sites=["SYD", "BNE"], username="phil")
    session = Session.objects.get(participant=active, number=1)
    Session.objects.filter(pk=session.pk).update(
        status="attended",
        physiotherapist=physio,
        mode="in_person",
        starts_at=RANDOMISED_AT + dt.timedelta(days=7),
        ends_at=RANDOMISED_AT + dt.timedelta(days=7, minutes=45),
    )
    SessionRecord.objects.create(
        session=session,
        attendance="attended",
        duration_minutes=40,
        topics=["pain_science", "fear"],
        notes=f"Talked it over with {FREE_TEXT_NAMES[5]}",
        recorded_by=physio,
        recorded_at=RANDOMISED_AT + dt.timedelta(days=7, hours=1),
    )
    Prescription.objects.create(
        session=session,
        participant=active,
        walks_per_week=3,
        minutes_per_walk=20,
        progression=f"Walk with {FREE_TEXT_NAMES[6]}",
        starts_on=dt.date(2026, 3, 10),
    )
    Walk.objects.create(participant=active, walked_on=dt.date(2026, 3, 11), minutes=25, steps=3000)
    # Baseline: entered by staff the day before randomisation for the first, answered by the
    # second through their link on the day; the third and fourth have none (empty cells, same rows).
    for participant, source, at in (
        (first, "staff", RANDOMISED_AT - dt.timedelta(days=1)),
        (second, "participant", RANDOMISED_AT),
    ):
        occurrence = Occurrence.objects.get(participant=participant, instrument="baseline", month=0)  # from enrolment
        Occurrence.objects.filter(pk=occurrence.pk).update(
            opens_at=RANDOMISED_AT - dt.timedelta(days=2), closes_at=RANDOMISED_AT + dt.timedelta(days=30), status="open"
        )
        occurrence.refresh_from_db()
        followup.response_submit(
            occurrence=occurrence, raw=BASELINE_ANSWERS, source=source, by=coordinator if source == "staff" else None, now=at
        )
    # Version 2 of the monthly questionnaire from April: the fourth reports two episodes in month 2.
    with time_machine.travel(dt.datetime(2026, 4, 5, tzinfo=dt.UTC), tick=False):
        followup.instrument_publish(trial=walkback, definition=MONTHLY_EPISODES)
    month_2 = Occurrence.objects.get(participant=fourth, instrument="monthly", month=2)
    followup.response_submit(occurrence=month_2, raw=TWO_EPISODES, source="staff", by=coordinator, now=MONTH_2)
    AdverseEvent.objects.create(
        participant=active,
        source="session",
        session=session,
        status="open",
        onset_date=dt.date(2026, 3, 15),
        description=f"Tripped over {FREE_TEXT_NAMES[4]}'s dog",
        action_taken=f"Called {FREE_TEXT_NAMES[4]}",
        category="lower_extremity",
        severity="mild",
        aware_at=RANDOMISED_AT + dt.timedelta(days=14),
        reported_by=physio,
    )
    return people


@pytest.fixture
def locked(walkback: Trial, dataset, investigator, password) -> Trial:  # type: ignore[no-untyped-def]
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Kept open for the test")
    walkback.refresh_from_db()
    return walkback


def fresh(user: Any) -> Any:
    """The user again: access is cached per user object, and the lock changes who sees arms."""
    return type(user).objects.get(pk=user.pk)


def built(trial: Trial, variant: str, by: Any, releases_dir: Path) -> tuple[Release, dict[str, bytes]]:
    release = services.release_create(trial=trial, variant=variant, by=fresh(by))
    release = services.release_build(release_id=release.pk)
    assert release is not None and release.status == "ready", release and release.error
    with zipfile.ZipFile(releases_dir / release.zip_name) as archive:
        # by their path in the release folder: the analysis's files are under analysis/
        files = {info.filename.split("/", 1)[1]: archive.read(info) for info in archive.infolist()}
    return release, files


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def table_count(sql: str, *params: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


# --- Who may create what, and when -----------------------------------------------------------


def test_a_release_before_the_lock_is_refused_with_a_clear_409(walkback: Trial, investigator, api: APIClient) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict, match="not locked"):
        services.release_create(trial=walkback, variant="blinded", by=investigator)
    api.force_authenticate(investigator)
    response = api.post("/api/v1/releases/", {"variant": "blinded"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": services.NOT_LOCKED, "errors": {}}
    assert not Release.objects.exists()


def test_investigators_and_statisticians_create_releases_and_only_roles_that_see_arms_get_unblinded(
    locked: Trial, investigator, statistician, datamanager, coordinator, api: APIClient
) -> None:  # type: ignore[no-untyped-def]
    for user in (datamanager, coordinator):
        with pytest.raises(NotAllowed):
            services.release_create(trial=locked, variant="blinded", by=fresh(user))
        api.force_authenticate(fresh(user))
        response = api.post("/api/v1/releases/", {"variant": "blinded"}, format="json")
        assert response.status_code == 403 and set(response.json()) == {"detail", "errors"}
    numbers = [
        services.release_create(trial=locked, variant=variant, by=fresh(user)).number
        for user in (investigator, statistician)
        for variant in ("blinded", "unblinded")
    ]
    assert numbers == [1, 2, 3, 4]
    # A trial where statisticians stay blinded after the lock: blinded only.
    Role.objects.filter(trial=locked, code="statistician").update(sees_allocation_after_lock=False)
    with pytest.raises(NotAllowed, match="unblinded"):
        services.release_create(trial=locked, variant="unblinded", by=fresh(statistician))
    assert services.release_create(trial=locked, variant="blinded", by=fresh(statistician)).number == 5
    api.force_authenticate(fresh(investigator))
    unknown = api.post("/api/v1/releases/", {"variant": "everything"}, format="json")
    assert unknown.status_code == 400 and "variant" in unknown.json()["errors"]


# --- What a release holds ---------------------------------------------------------------------


def test_two_builds_of_the_same_lock_are_byte_identical(locked: Trial, investigator, releases_dir: Path) -> None:  # type: ignore[no-untyped-def]
    first, first_files = built(locked, "unblinded", investigator, releases_dir)
    with time_machine.travel(dt.datetime(2026, 9, 1, tzinfo=dt.UTC)):  # another day changes nothing
        second, second_files = built(locked, "unblinded", investigator, releases_dir)
    assert (first.number, second.number) == (1, 2)
    assert first.zip_sha256 == second.zip_sha256
    assert (releases_dir / first.zip_name).read_bytes() == (releases_dir / second.zip_name).read_bytes()
    assert first_files == second_files
    assert first.files == second.files and {f["name"] for f in first.files} == set(first_files)
    blinded, _ = built(locked, "blinded", investigator, releases_dir)
    assert blinded.zip_sha256 != first.zip_sha256


def test_the_manifest_counts_what_the_database_holds(locked: Trial, investigator, releases_dir: Path) -> None:  # type: ignore[no-untyped-def]
    release, files = built(locked, "unblinded", investigator, releases_dir)
    manifest = {row["name"]: row for row in rows(files["manifest.csv"])}
    assert set(manifest) == set(files) - {"manifest.csv"}
    assert list(manifest) == sorted(manifest)
    import hashlib

    for name, row in manifest.items():
        assert row["sha256"] == hashlib.sha256(files[name]).hexdigest()
        if name.endswith(".csv"):
            assert int(row["rows"]) == len(rows(files[name]))
    trial = f"JOIN trial_site s ON s.id = p.site_id WHERE s.trial_id = {locked.pk}"
    expected = {
        "participants.csv": table_count(f"SELECT count(*) FROM participants_participant p {trial}"),
        "allocation.csv": table_count(
            f"SELECT count(*) FROM trial_allocation a JOIN participants_participant p ON p.id = a.participant_id {trial}"
        ),
        "screening.csv": table_count(
            f"SELECT count(*) FROM participants_screening p JOIN trial_site s ON s.id = p.site_id WHERE s.trial_id = {locked.pk}"
        ),
        "sessions.csv": table_count(
            f"SELECT count(*) FROM participants_session x JOIN participants_participant p ON p.id = x.participant_id {trial}"
        ),
        "prescriptions.csv": table_count("SELECT count(*) FROM participants_prescription"),
        "walks.csv": table_count("SELECT count(*) FROM participants_walk"),
        "adverse_events.csv": table_count("SELECT count(*) FROM participants_adverseevent"),
        "withdrawals.csv": table_count("SELECT count(*) FROM participants_withdrawal"),
        "outcomes.csv": table_count(f"SELECT count(*) FROM participants_participant p {trial} AND p.randomised_at IS NOT NULL"),
        "questionnaire_scores.csv": table_count(
            f"SELECT count(*) FROM participants_participant p {trial} AND p.randomised_at IS NOT NULL"
        ),
        # one row per answered item, free text and the baseline (its own table) left out
        "questionnaire_items.csv": table_count(
            "SELECT count(*) FROM followup_questionnaireresponse r JOIN followup_occurrence o ON o.id = r.occurrence_id, "
            "jsonb_object_keys(r.answers) k WHERE k NOT LIKE '%%care_from_other' AND k <> 'new_health_problem_details' "
            "AND o.instrument <> 'baseline'"
        ),
        "analysis.csv": table_count(f"SELECT count(*) FROM participants_participant p {trial} AND p.randomised_at IS NOT NULL"),
        "baseline.csv": table_count(f"SELECT count(*) FROM participants_participant p {trial} AND p.randomised_at IS NOT NULL"),
        "episodes.csv": 3,  # one in version 1, two in version 2
    }
    assert expected["screening.csv"] == 6 and expected["adverse_events.csv"] == 2
    for name, count in expected.items():
        assert int(manifest[name]["rows"]) == count, name
    assert int(manifest["analysis.dta"]["rows"]) == int(manifest["analysis.sav"]["rows"]) == expected["participants.csv"]
    assert [(f["name"], f["rows"]) for f in release.files if f["name"] == "participants.csv"] == [("participants.csv", 4)]


def test_the_outcomes_use_the_final_value_and_dates_are_days_from_randomisation(
    locked: Trial, dataset, investigator, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "unblinded", investigator, releases_dir)
    first, second, third, _ = (p.study_id for p in dataset.values())
    outcomes = {row["study_id"]: row for row in rows(files["outcomes.csv"])}
    # derived: a recurrence starting 20 March, 18 days after randomisation on 2 March (Sydney)
    assert (outcomes[first]["any_event"], outcomes[first]["any_time"], outcomes[first]["any_adjudicated"]) == ("1", "18", "0")
    # adjudicated: an event on 12 March the questionnaires did not show
    assert (outcomes[second]["any_event"], outcomes[second]["any_time"], outcomes[second]["any_adjudicated"]) == ("1", "10", "1")
    assert outcomes[second]["any_censor_reason"] == "" and outcomes[second]["activity_limiting_event"] == "0"
    assert outcomes[second]["arm"] in {"walking", "control"}
    participants = {row["study_id"]: row for row in rows(files["participants.csv"])}
    assert participants[third]["withdrawal_scope"] == "followup" and participants[third]["withdrawal_day"] == "31"
    assert participants[first]["enrolment_day"] == "0" and participants[first]["prior_episodes_gt2"] == "yes"
    items = [row for row in rows(files["questionnaire_items.csv"]) if row["study_id"] == first and row["instrument"] == "monthly"]
    answers = {row["item"]: row["value"] for row in items}
    assert answers["ep1_start"] == "18" and answers["lbp_any"] == "1" and answers["ep1_care_from"] == "gp;other"
    scores = {row["study_id"]: row for row in rows(files["questionnaire_scores.csv"])}
    assert (scores[first]["rmdq_total_m03"], scores[first]["eq5d_profile_m03"], scores[first]["back_pain_m01"]) == (
        "5",
        "22222",
        "1",
    )
    assert scores[second]["rmdq_total_m03"] == "" and scores[second]["back_pain_m01"] == "0"


# --- De-identification and blinding ------------------------------------------------------------


def test_no_name_or_contact_detail_appears_in_either_variant(locked: Trial, investigator, releases_dir: Path) -> None:  # type: ignore[no-untyped-def]
    forbidden = [text for name, email, mobile, *_ in PEOPLE for text in (name, email, mobile, mobile[3:])]
    forbidden += [part for name, *_ in PEOPLE for part in name.split()] + FREE_TEXT_NAMES
    forbidden += [part for name in FREE_TEXT_NAMES for part in name.split()]
    for variant in ("blinded", "unblinded"):
        release, files = built(locked, variant, investigator, releases_dir)
        for blob in [*files.values(), (releases_dir / release.zip_name).read_bytes()]:
            lowered = blob.lower()
            for text in forbidden:
                assert text.lower().encode() not in lowered, (variant, text)
                assert text.lower().encode("utf-16-le") not in lowered, (variant, text)
        assert b"Ivy Investigator" in files["README.md"]  # the lock's signer, by design


def test_the_blinded_variant_has_no_arm_anywhere(locked: Trial, investigator, releases_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "blinded", investigator, releases_dir)
    arms = list(locked.arms.values_list("code", "name"))
    assert {"allocation.csv", "sessions.csv", "prescriptions.csv", "walks.csv"}.isdisjoint(files)
    for name, data in files.items():
        for _, arm_name in arms:
            assert arm_name.lower().encode() not in data.lower(), (name, arm_name)
        if name.endswith(".csv"):
            table = list(csv.reader(io.StringIO(data.decode())))
            assert "arm" not in table[0], name
            cells = {cell for row in table[1:] for cell in row}
            assert not cells & {code for code, _ in arms}, name
    assert all(row["source"] != "session" for row in rows(files["adverse_events.csv"]))
    assert not any(row["variable"] == "arm" for row in rows(files["dictionary.csv"]))
    for fmt, read in (("dta", pyreadstat.read_dta), ("sav", pyreadstat.read_sav)):
        path = tmp_path / f"analysis.{fmt}"
        path.write_bytes(files[f"analysis.{fmt}"])
        frame, meta = read(str(path))
        assert "arm" not in frame.columns
        labels = [text for mapping in meta.variable_value_labels.values() for text in mapping.values()]
        assert not {name for _, name in arms} & set(labels)
    _, unblinded_files = built(locked, "unblinded", investigator, releases_dir)
    assert {row["arm"] for row in rows(unblinded_files["allocation.csv"])} == {code for code, _ in arms}


# --- Stata and SPSS --------------------------------------------------------------------------


def test_the_stata_and_spss_files_read_back_with_their_labels(
    locked: Trial, dataset, investigator, releases_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "unblinded", investigator, releases_dir)
    participants = rows(files["analysis.csv"])
    dictionary = [row for row in rows(files["dictionary.csv"]) if row["table"] == "analysis.dta analysis.sav"]
    for fmt, read in (("dta", pyreadstat.read_dta), ("sav", pyreadstat.read_sav)):
        path = tmp_path / f"analysis.{fmt}"
        path.write_bytes(files[f"analysis.{fmt}"])
        frame, meta = read(str(path))
        assert list(frame.columns) == [row["variable"] for row in dictionary]
        assert list(frame["study_id"]) == [row["study_id"] for row in participants]
        labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
        assert labels["site"] == "Site" and labels["any_days"] == "Time to first recurrence or censoring"
        values = {name: {int(k): v for k, v in mapping.items()} for name, mapping in meta.variable_value_labels.items()}
        assert values["site"][1] == "Brisbane Northside Physiotherapy"  # sites in code order: BNE first
        assert values["arm"] == {1: "Walking and education programme", 2: "No intervention (control)"}
        assert values["any_event"] == {1: "Yes", 0: "No"}
        labelled, _ = read(str(path), apply_value_formats=True)
        assert set(labelled["prior_episodes_gt2"]) == {"Yes", "No"}
        assert list(labelled["site"]) == [
            "Sydney CBD Physiotherapy" if row["site"] == "SYD" else "Brisbane Northside Physiotherapy" for row in participants
        ]
        first = next(iter(dataset.values())).study_id
        row = frame[frame["study_id"] == first].iloc[0]
        assert (row["any_days"], row["rmdq_total_m03"], row["eq5d_profile_m03"]) == (18, 5, "22222")
        assert (row["age_years"], row["bmi"], row["timepoint_day_m03"]) == (45, 26.1, 91)
        assert list(labelled[labelled["study_id"] == first]["timepoint_by_m03"]) == ["Staff, on the participant's behalf"]


@pytest.mark.parametrize("split", [0, 1, 2, 3])
def test_chunked_stat_files_equal_pyreadstat_writing_the_whole_table(split: int) -> None:
    columns = [
        StatColumn("study_id", "Study id", "string", width=11),
        StatColumn("site", "Site", "number", value_labels={1: "SYD", 2: "NCL"}),
        StatColumn("days", "Days", "number"),
        StatColumn("profile", "Profile", "string", width=5),
    ]
    data = [["WB-SYD-0001", "AB", "X"], [1.0, None, 2.0], [-3.5, 0.0, None], ["11223", None, "1"]]
    created = dt.datetime(2026, 3, 2, 1, 2, 3)
    targets = {"dta": io.BytesIO(), "sav": io.BytesIO()}
    count = write_stat_files(
        targets=targets,  # type: ignore[arg-type]
        columns=columns,
        chunks=[[c[:split] for c in data], [c[split:] for c in data]],
        file_label="test",
        created=created,
    )
    assert count == 3
    frame = pd.DataFrame(
        {
            "study_id": pd.Series(data[0], dtype=object),
            "site": pd.Series([float("nan") if v is None else v for v in data[1]], dtype="float64"),
            "days": pd.Series([float("nan") if v is None else v for v in data[2]], dtype="float64"),
            "profile": pd.Series(data[3], dtype=object),
        }
    )
    labels = {c.name: c.label for c in columns}
    with tempfile.TemporaryDirectory() as work:
        pyreadstat.write_dta(
            frame,
            f"{work}/whole.dta",
            file_label="test",
            column_labels=labels,
            version=14,
            variable_value_labels={"site": {1: "SYD", 2: "NCL"}},
        )
        pyreadstat.write_sav(
            frame,
            f"{work}/whole.sav",
            file_label="test",
            column_labels=labels,
            variable_value_labels={"site": {1: "SYD", 2: "NCL"}},
            variable_measure={"study_id": "nominal", "site": "nominal", "profile": "nominal"},
        )
        for fmt in ("dta", "sav"):
            whole = bytearray(Path(f"{work}/whole.{fmt}").read_bytes())
            _stamp(fmt, whole, 3, 0, created)  # the same creation time
            assert targets[fmt].getvalue() == bytes(whole), fmt


# --- The build task, downloads and the API -------------------------------------------------------


def test_the_task_is_named_queued_on_commit_and_safe_to_run_twice(
    locked: Trial, investigator, releases_dir: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from closeout.tasks import build_release

    assert build_release.name == "trial.build_release" and "trial.build_release" in app.tasks
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        release = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    assert Release.objects.get(pk=release.pk).status == "queued" and len(callbacks) == 1
    callbacks[0]()  # the commit queues the build (run in process here)
    release.refresh_from_db()
    assert release.status == "ready" and release.progress == 100
    first = (releases_dir / release.zip_name).stat()
    build_release.apply(kwargs={"release_id": release.pk})  # again: nothing to do
    assert services.release_build(release_id=release.pk) is None
    release.refresh_from_db()
    assert release.status == "ready" and (releases_dir / release.zip_name).stat().st_mtime_ns == first.st_mtime_ns
    assert sorted(p.name for p in releases_dir.iterdir()) == [release.zip_name]  # no partial file left


def test_a_release_of_a_lock_undone_before_its_build_fails_with_the_reason(
    locked: Trial, investigator, password, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    release = services.release_create(trial=locked, variant="blinded", by=fresh(investigator))
    database_unlock(trial=locked, user=fresh(investigator), password=password, reason="A late questionnaire")
    built_release = services.release_build(release_id=release.pk)
    assert built_release is not None and built_release.status == "failed" and "undone" in built_release.error
    assert not releases_dir.exists() or not any(releases_dir.iterdir())


def test_downloads_are_audited_and_follow_the_variant_rules(
    locked: Trial, investigator, statistician, datamanager, releases_dir: Path, api: APIClient
) -> None:  # type: ignore[no-untyped-def]
    release, _ = built(locked, "unblinded", investigator, releases_dir)
    api.force_authenticate(fresh(statistician))
    response = api.get(f"/api/v1/releases/{release.pk}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert release.zip_name in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    import hashlib

    assert hashlib.sha256(body).hexdigest() == release.zip_sha256 == response["X-Checksum-Sha256"]
    event = SecurityEvent.objects.get(kind="download")
    assert event.user == statistician
    assert event.detail == {
        "release": 1,
        "file": release.zip_name,
        "variant": "unblinded",
        "lock_version": 1,
        "sha256": release.zip_sha256,
    }
    api.force_authenticate(fresh(datamanager))
    assert api.get(f"/api/v1/releases/{release.pk}/download/").status_code == 403
    Role.objects.filter(trial=locked, code="statistician").update(sees_allocation_after_lock=False)
    api.force_authenticate(fresh(statistician))
    refused = api.get(f"/api/v1/releases/{release.pk}/download/")
    assert refused.status_code == 403 and "unblinded" in refused.json()["detail"]
    assert SecurityEvent.objects.filter(kind="download").count() == 1


def test_the_api_shapes(locked: Trial, investigator, releases_dir: Path, api: APIClient) -> None:  # type: ignore[no-untyped-def]
    api.force_authenticate(fresh(investigator))
    created = api.post("/api/v1/releases/", {"variant": "blinded"}, format="json")
    assert created.status_code == 202
    assert created.json() == {"id": created.json()["id"], "status": "queued"}
    pk = created.json()["id"]
    queued = api.get(f"/api/v1/releases/{pk}/").json()
    assert (queued["status"], queued["progress"], queued["files"]) == ("queued", 0, [])
    not_ready = api.get(f"/api/v1/releases/{pk}/download/")
    assert not_ready.status_code == 409 and set(not_ready.json()) == {"detail", "errors"}
    services.release_build(release_id=pk)
    detail = api.get(f"/api/v1/releases/{pk}/").json()
    assert {"status", "progress", "files", "number", "variant", "lock_version", "zip_sha256", "created_by", "created_at"} <= set(
        detail
    )
    assert (detail["status"], detail["progress"], detail["number"], detail["variant"], detail["lock_version"]) == (
        "ready",
        100,
        1,
        "blinded",
        1,
    )
    assert detail["created_by"] == "ivy" and len(detail["zip_sha256"]) == 64
    assert all(set(f) == {"name", "rows", "sha256"} for f in detail["files"])
    assert {"participants.csv", "dictionary.csv", "datapackage.json", "README.md", "manifest.csv"} <= {
        f["name"] for f in detail["files"]
    }
    listed = api.get("/api/v1/releases/").json()
    assert [r["id"] for r in listed["results"]] == [pk]
    assert api.get("/api/v1/releases/999999/").status_code == 404


def test_the_data_dictionary_and_data_package_describe_every_column(locked: Trial, investigator, releases_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    _, files = built(locked, "unblinded", investigator, releases_dir)
    dictionary = rows(files["dictionary.csv"])
    package = json.loads(files["datapackage.json"])
    tabular = [r for r in package["resources"] if r.get("format") == "csv"]
    assert {r["path"] for r in tabular} == {name for name in files if name.endswith(".csv")} - {"dictionary.csv", "manifest.csv"}
    for resource in tabular:
        header = next(csv.reader(io.StringIO(files[resource["path"]].decode())))
        assert [f["name"] for f in resource["schema"]["fields"]] == header
        described = [r["variable"] for r in dictionary if r["table"] == resource["name"] and not r["instrument"]]
        assert described == header
    site = next(f for f in tabular[0]["schema"]["fields"] if f["name"] == "site")
    assert site["constraints"]["enum"] == ["BNE", "GCT", "NCL", "SYD", "WOL"]
    items = {r["variable"]: r for r in dictionary if r["instrument"] == "monthly"}
    assert items["ep1_interference"]["codes"].startswith("0=Not at all; 1=A little bit")
    assert items["ep1_start"]["units"] == "days from randomisation"
    assert "new_health_problem_details" not in items  # free text is not exported
    readme = files["README.md"].decode()
    assert "lock v1" in readme and "unblinded" in readme and "De-identification" in readme


def test_the_releases_page_lists_creates_and_offers_unblinded_only_when_allowed(
    locked: Trial, investigator, statistician, coordinator, client, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(investigator)
    page = client.get("/releases/")
    assert page.status_code == 200 and b'value="unblinded"' in page.content and b"lock v1" in page.content
    response = client.post("/releases/", {"variant": "blinded"})
    assert response.status_code == 302 and Release.objects.get().variant == "blinded"
    page = client.get("/releases/")
    assert b"progress-bar" in page.content and b"releases-building" in page.content
    services.release_build(release_id=Release.objects.get().pk)
    page = client.get("/releases/")
    assert b'data-testid="release-download"' in page.content and Release.objects.get().zip_sha256.encode() in page.content
    Role.objects.filter(trial=locked, code="statistician").update(sees_allocation_after_lock=False)
    client.force_login(statistician)
    assert b'value="unblinded"' not in client.get("/releases/").content
    client.force_login(coordinator)
    assert client.get("/releases/").status_code == 403


def test_before_the_lock_the_page_says_why_there_is_no_form(walkback: Trial, investigator, client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(investigator)
    page = client.get("/releases/")
    assert page.status_code == 200 and b"not locked" in page.content and b'data-testid="release-form"' not in page.content
    assert access.has_perm(investigator, access.Perm.CREATE_RELEASE, trial=walkback)


# --- The analysis table, the baseline and the episodes ---------------------------------------------


def test_the_analysis_table_has_every_randomised_participant_ready_for_a_survival_analysis(
    locked: Trial, dataset, investigator, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "unblinded", investigator, releases_dir)
    first, second, third, fourth = dataset.values()
    analysis = {row["study_id"]: row for row in rows(files["analysis.csv"])}
    assert list(analysis) == sorted(p.study_id for p in dataset.values())
    header = next(csv.reader(io.StringIO(files["analysis.csv"].decode())))
    assert header[:5] == ["study_id", "site", "prior_episodes_gt2", "referral", "arm"]
    for name in ("randomised_day", "planned_followup_days", "age_years", "sex", "bmi", "rmdq_total", "eq5d_vas"):
        assert name in header, name
    assert "date_of_birth" not in header
    one = analysis[first.study_id]
    # 36 months from 2 March 2026 (the common end of follow-up is later): 2 March 2029.
    assert (one["planned_followup_days"], one["randomised_day"]) == (
        "1096",
        str((dt.date(2026, 3, 2) - locked.recruitment_start).days),
    )
    assert (one["age_years"], one["sex"], one["bmi"], one["rmdq_total"], one["eq5d_vas"], one["pain_now"]) == (
        "45",
        "female",
        "26.1",
        "4",
        "80",
        "1",
    )
    assert (one["any_days"], one["any_event"], one["any_censor_reason"]) == ("18", "1", "")
    # The adjudicated event wins over the derived censoring, as in outcomes.csv.
    assert (analysis[second.study_id]["any_days"], analysis[second.study_id]["any_event"]) == ("10", "1")
    assert analysis[third.study_id]["activity_limiting_censor_reason"] == "withdrawal"
    assert analysis[third.study_id]["age_years"] == "" and analysis[third.study_id]["itt"] == "1"
    # The fourth's second episode in month 2 (20 April) is the first activity-limiting one.
    assert (analysis[fourth.study_id]["activity_limiting_days"], analysis[fourth.study_id]["activity_limiting_event"]) == (
        "49",
        "1",
    )
    # Monthly questionnaires due by the lock (the lock is "now"): month 1 for all, month 2 answered by the fourth.
    lock_day = locked.data_locked_at.astimezone(zoneinfo.ZoneInfo("Australia/Sydney")).date()
    due = Occurrence.objects.filter(participant=first, instrument="monthly", due_date__lte=lock_day).exclude(status="cancelled")
    assert (one["questionnaires_expected"], one["questionnaires_completed"], one["questionnaires_missed"]) == (
        str(due.count()),
        "1",
        str(due.count() - 1),
    )
    assert analysis[fourth.study_id]["questionnaires_completed"] == "2"
    walker = next(p for p in dataset.values() if p.allocation.arm.code == "walking")
    # Per protocol: the walker attended 1 of the 4 sessions WalkBack asks for; the others stayed in follow-up.
    assert {study_id: row["per_protocol"] for study_id, row in analysis.items()} == {
        p.study_id: "0" if p == walker else "1" for p in dataset.values()
    }


def test_the_per_protocol_rule_is_configured_on_the_intervention_policy(
    walkback: Trial, dataset, investigator, password, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    InterventionPolicy.objects.filter(trial=walkback).update(per_protocol_min_sessions=1)
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Kept open for the test")
    _, files = built(Trial.objects.get(pk=walkback.pk), "unblinded", investigator, releases_dir)
    assert {row["per_protocol"] for row in rows(files["analysis.csv"])} == {"1"}
    assert "at least 1 sessions attended" in files["dictionary.csv"].decode()


def test_the_baseline_table_releases_the_age_never_the_date_of_birth(
    locked: Trial, dataset, investigator, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    release, files = built(locked, "unblinded", investigator, releases_dir)
    first, second, third, _ = dataset.values()
    baseline = {row["study_id"]: row for row in rows(files["baseline.csv"])}
    assert len(baseline) == 4
    assert (baseline[first.study_id]["answered_day"], baseline[first.study_id]["entered_by"]) == ("-1", "staff")
    assert (baseline[second.study_id]["answered_day"], baseline[second.study_id]["entered_by"]) == ("0", "participant")
    assert baseline[first.study_id]["age_years"] == "45" and baseline[first.study_id]["bmi"] == "26.1"
    assert (baseline[first.study_id]["rmdq_01"], baseline[first.study_id]["rmdq_05"], baseline[first.study_id]["rmdq_total"]) == (
        "1",
        "0",
        "4",
    )
    assert baseline[first.study_id]["eq5d_profile"] == "11111" and baseline[first.study_id]["education"] == "degree"
    assert set(baseline[third.study_id].values()) == {third.study_id, ""}
    for name, data in [*files.items(), ("zip", (releases_dir / release.zip_name).read_bytes())]:
        assert b"date_of_birth" not in data and DATE_OF_BIRTH.encode() not in data, name
    days_from_birth = str((dt.date(1980, 3, 3) - dt.date(2026, 3, 2)).days)
    assert days_from_birth not in files["baseline.csv"].decode()
    # The baseline stays out of the per-timepoint tables.
    assert all(row["instrument"] != "baseline" for row in rows(files["questionnaire_items.csv"]))
    assert not any(name.startswith("baseline_") for name in rows(files["questionnaire_scores.csv"])[0])


def test_questionnaire_tables_say_when_and_by_whom_they_were_answered(
    locked: Trial, dataset, investigator, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "unblinded", investigator, releases_dir)
    first, _, _, fourth = dataset.values()
    items = rows(files["questionnaire_items.csv"])
    month_1 = {
        (row["answered_day"], row["entered_by"]) for row in items if row["study_id"] == first.study_id and row["month"] == "1"
    }
    assert month_1 == {("31", "staff")}  # answered on 2 April, 31 days after randomisation
    scores = {row["study_id"]: row for row in rows(files["questionnaire_scores.csv"])}
    assert (scores[fourth.study_id]["monthly_day_m02"], scores[fourth.study_id]["monthly_by_m02"]) == ("63", "staff")
    assert scores[fourth.study_id]["monthly_day_m03"] == "" and scores[fourth.study_id]["back_pain_m02"] == "1"


def test_episodes_are_read_as_the_outcomes_read_them(locked: Trial, dataset, investigator, releases_dir: Path) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "unblinded", investigator, releases_dir)
    first, _, _, fourth = dataset.values()
    found = {(row["study_id"], row["month"], row["episode"]): row for row in rows(files["episodes.csv"])}
    assert list(found) == [(fourth.study_id, "2", "1"), (fourth.study_id, "2", "2"), (first.study_id, "1", "1")]
    assert found[first.study_id, "1", "1"] == {
        "study_id": first.study_id,
        "month": "1",
        "episode": "1",
        "start_day": "18",
        "lasted_24h": "1",
        "interference": "3",
        "pain_avg": "5",
        "pain_worst": "7",
        "care_sought": "1",
        "care_from": "gp;other",
        "work_days_missed": "2",
        "recovered_day": "",
        "after_followup_end": "0",
    }
    second_episode = found[fourth.study_id, "2", "2"]
    assert (
        second_episode["start_day"],
        second_episode["interference"],
        second_episode["care_from"],
        second_episode["work_days_missed"],
    ) == ("49", "3", "gp;physiotherapist", "3")
    assert (found[fourth.study_id, "2", "1"]["recovered_day"], found[fourth.study_id, "2", "1"]["interference"]) == ("41", "1")


KEYS = ("episode", "start_day", "lasted_24h", "interference", "pain_avg", "care_sought", "care_from", "work_days_missed")
KEYS += ("after_followup_end",)


@pytest.mark.parametrize(
    "answers",
    [
        {"lbp_any": True, "ep1_start": "2026-05-03", "ep1_24h": False, "ep1_more": "yes", "ep2_24h": True, "ep2_more": 1},
        {"lbp_any": True, "ep1_start": "2026-05-03", "ep1_more": True, "ep3_start": "2026-05-09"},  # no second: one
        {"lbp_any": False, "ep1_start": "2026-05-03", "ep1_24h": True},
        {"lbp_any": "yes", "ep1_24h": "true", "ep1_interference": 2.7, "ep1_pain_avg": "4", "ep1_work_days_missed": None},
        {"lbp_24h": "True", "lbp_start": "2026-09-01", "interference": "x", "care_sought": 1, "care_from": "gp"},
        {"lbp_24h": False, "lbp_start": "2026-05-03"},
    ],
)
def test_the_episodes_table_agrees_with_the_outcomes_module_and_marks_episodes_after_the_end(
    walkback: Trial, dataset, investigator, password, releases_dir: Path, answers: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    """Answers the forms would not let through, written directly: the SQL reads them as
    ``followup.outcomes.episodes`` does. The trial's common end of follow-up is moved to 1 June 2026,
    so an episode that starts after it is marked (and planned follow-up ends there)."""
    from followup.models import InstrumentVersion, QuestionnaireResponse

    second = list(dataset.values())[1]
    occurrence = Occurrence.objects.get(participant=second, instrument="monthly", month=3)
    QuestionnaireResponse.objects.create(
        occurrence=occurrence,
        instrument_version=InstrumentVersion.objects.get(trial=walkback, code="monthly", version="2"),
        answers=answers,
        source="participant",
        submitted_at=MONTH_2 + dt.timedelta(days=30),
    )
    Occurrence.objects.filter(pk=occurrence.pk).update(status="completed", completed_at=MONTH_2 + dt.timedelta(days=30))
    Trial.objects.filter(pk=walkback.pk).update(
        recruitment_start=dt.date(2026, 1, 1), recruitment_end=dt.date(2026, 4, 1), followup_end=dt.date(2026, 6, 1)
    )
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Kept open for the test")
    _, files = built(Trial.objects.get(pk=walkback.pk), "unblinded", investigator, releases_dir)
    released = [row for row in rows(files["episodes.csv"]) if row["study_id"] == second.study_id and row["month"] == "3"]
    day0 = dt.date(2026, 3, 2)
    end = dt.date(2026, 6, 1)
    expected = [
        {
            "episode": str(e.number),
            "start_day": "" if e.start is None else str((e.start - day0).days),
            "lasted_24h": str(int(e.lasted_24h)),
            "interference": "" if e.interference is None else str(e.interference),
            "pain_avg": "" if e.pain_avg is None else str(e.pain_avg),
            "care_sought": str(int(e.care_sought)),
            "care_from": ";".join(e.care_from),
            "work_days_missed": str(e.work_days_missed),
            "after_followup_end": str(int(max(e.start or occurrence.due_date, day0) > end)),
        }
        for e in episodes(answers)
    ]
    assert [{key: row[key] for key in KEYS} for row in released] == expected
    analysis = {row["study_id"]: row for row in rows(files["analysis.csv"])}
    assert analysis[second.study_id]["planned_followup_days"] == str((end - day0).days)
    assert analysis[second.study_id]["randomised_day"] == "60"


def test_the_planned_end_of_follow_up_in_sql_agrees_with_the_schedule(walkback: Trial) -> None:
    """The release's planned end (the earlier of the maximum follow-up and the common end) counts
    months as the schedule does, month ends and leap days included."""
    from closeout.releases import catalogue
    from followup.scheduling import add_months

    config = catalogue.Config(
        trial_id=walkback.pk,
        trial_code="T",
        recruitment_start=dt.date(2024, 1, 1),
        blinded=True,
        sites=(),
        factors=(),
        arms=(),
        criteria=(),
        referral_levels=(),
        ae_categories=(),
        topics=(),
        instruments=(),
        study_id_width=1,
        locked_at=RANDOMISED_AT,
        followup_end=dt.date(2030, 6, 30),
        max_followup_months=36,
        outcome_instrument="monthly",
    )
    days = [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2025, 11, 30), dt.date(2027, 7, 1), dt.date(2027, 8, 31)]
    with connection.cursor() as cursor:
        for day in days:
            cursor.execute(f"SELECT {catalogue._planned_end(config)} FROM (SELECT %s::date AS day0) b", [day])
            assert cursor.fetchone()[0] == min(add_months(day, 36), config.followup_end), day


# --- The cached-access bug --------------------------------------------------------------------------


def test_one_process_that_locks_then_builds_unblinded_releases_as_statistician_and_investigator(
    walkback: Trial, dataset, investigator, statistician, password, releases_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    """The same user and trial objects throughout, as a script would hold them: what a user sees
    was worked out (blinded) before the lock, and must not be reused after it."""
    trial = Trial.objects.get(pk=walkback.pk)
    for user in (statistician, investigator):
        assert not access.can_see_allocation(user, trial=trial)  # worked out, and cached, before the lock
    database_lock(trial=trial, user=investigator, password=password, open_items_note="Kept open for the test")
    for user in (statistician, investigator):
        release = services.release_create(trial=trial, variant="unblinded", by=user)
        release = services.release_build(release_id=release.pk)
        assert release is not None and release.status == "ready", release and release.error
        assert services.release_download(release=release, by=user).is_file()
        with zipfile.ZipFile(releases_dir / release.zip_name) as archive:
            assert "arm" in archive.read(f"{Path(archive.namelist()[0]).parent}/analysis.csv").decode().splitlines()[0]
    assert access.can_see_allocation(statistician, trial=Trial.objects.get(pk=walkback.pk))
