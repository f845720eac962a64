"""Demo data: the WalkBack configuration, one staff member per role, and participants at every stage."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from followup import services as followup
from followup.baseline import BASELINE_INSTRUMENT
from followup.models import Occurrence, QuestionnaireResponse
from followup.services import schedule_create
from intervention import services as intervention
from intervention.models import Session, WorkingHours
from intervention.selectors import physiotherapist_slots
from intervention.services import sessions_plan
from messaging import services as messaging
from messaging.timing import allowed_send_time
from participants import services as journey
from participants.models import Participant, Screening
from presets.instrument_library import EQ5D_CODES
from presets.services import preset_apply
from presets.walkback import WALKBACK
from safety import services as safety
from safety.models import AdverseEvent
from trial import services, signin
from trial.audit import audit_context
from trial.models import ContactKind, RandomisationSlot, RoleCode, Trial, TrialContact

DEMO_PASSWORD_SUFFIX = "-walkback-demo"
DEMO_LIST_SEED = "walkback-demo-list-public-seed"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    sites: str
    otp_secret: str = ""  # base32, for roles that sign in with a second factor
    otpauth_uri: str = ""


def demo_totp_secret(username: str) -> str:
    """The demo's TOTP secret for ``username``: derived from a public string, like the demo
    passwords, so it is the same on every machine (never use demo logins in production)."""
    return base64.b32encode(hashlib.sha256(f"walkback-demo-totp:{username}".encode()).digest()[:20]).decode()


DEMO_STAFF: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("coordinator", RoleCode.COORDINATOR, ("SYD", "NCL")),
    ("physio", RoleCode.PHYSIOTHERAPIST, ("SYD",)),
    ("investigator", RoleCode.INVESTIGATOR, ()),
    ("datamanager", RoleCode.DATA_MANAGER, ()),
    ("statistician", RoleCode.STATISTICIAN, ()),
    ("admin", RoleCode.ADMIN, ()),
)


def demo_load() -> list[DemoLogin]:
    logins = _demo_data()
    _demo_messages()
    return logins


@transaction.atomic
def _demo_data() -> list[DemoLogin]:
    trial = preset_apply(preset=WALKBACK)
    logins = []
    existing = set(get_user_model().objects.values_list("username", flat=True))
    for username, role, sites in DEMO_STAFF:
        password = f"{username}{DEMO_PASSWORD_SUFFIX}"
        if username not in existing:
            services.staff_create(
                trial=trial, username=username, role=role, password=password, site_codes=sites, email=f"{username}@example.org"
            )
        user = get_user_model().objects.get(username=username)
        secret = uri = ""
        if signin.two_factor_required(user, trial):
            secret = demo_totp_secret(username)
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            if device is None or device.bin_key != base64.b32decode(secret):
                device = services.totp_device_provision(user=user, secret=secret)
            uri = device.config_url
        where = f" at {', '.join(sites)}" if sites else " (all sites)"
        logins.append(DemoLogin(username, password, role, where, otp_secret=secret, otpauth_uri=uri))
    _demo_contacts(trial)
    _demo_participants(trial)
    return logins


def _demo_contacts(trial: Trial) -> None:
    for kind, name, email in (
        (ContactKind.UNBLINDING, "Chief investigator", "ci@walkback.test"),
        (ContactKind.RANDOMISATION, "Trial statistician", "statistician@walkback.test"),
        (ContactKind.SAFETY, "Safety officer", "safety@walkback.test"),
    ):
        TrialContact.objects.get_or_create(trial=trial, kind=kind, email=email, defaults={"name": name})


ELIGIBLE_ANSWERS = {"inclusion": True, "exclusion": False}


def _demo_participants(trial: Trial) -> None:
    """People at every stage: screened, ineligible, declined, consented, randomised to each arm, withdrawn."""
    if Screening.objects.filter(site__trial=trial).exists():
        return
    coordinator = get_user_model().objects.get(username="coordinator")
    if not RandomisationSlot.objects.filter(trial=trial).exists():
        # A demo list from a public seed; a real trial's statistician generates theirs from a secret one.
        services.randomisation_list_generate(trial=trial, seed=DEMO_LIST_SEED, per_stratum=40, by="demo")
    criteria = list(trial.eligibility.filter(active=True))
    eligible = {c.code: ELIGIBLE_ANSWERS[c.kind] for c in criteria}
    syd, ncl = trial.sites.get(code="SYD"), trial.sites.get(code="NCL")

    journey.screening_record(site=syd, answers={**eligible, "recent_spinal_surgery": True}, by=coordinator, referral="clinician")
    journey.screening_record(site=ncl, answers=eligible, by=coordinator, referral="community")  # screened, not yet enrolled
    declined = journey.screening_record(site=ncl, answers=eligible, by=coordinator, referral="community")
    journey.screening_decline(screening=declined, reason="Could not commit to six sessions", by=coordinator)

    people = [
        ("Alex Demo", syd, "yes", "community"),
        ("Bo Demo", syd, "no", "clinician"),
        ("Cam Demo", syd, "no", "community"),
        ("Dee Demo", ncl, "yes", "clinician"),
        ("Eli Demo", ncl, "no", "community"),
        ("Fay Demo", syd, "yes", "clinician"),
        ("Gus Demo", ncl, "no", "clinician"),
    ]
    enrolled = []
    for name, site, prior, referral in people:
        screening = journey.screening_record(site=site, answers=eligible, by=coordinator, referral=referral)
        enrolled.append(
            journey.participant_enrol(
                screening=screening,
                consent=journey.ConsentInput(method="in_person", signed_name=name),
                strata={"prior_episodes_gt2": prior},
                contact=journey.ContactInput(
                    email=f"{name.split()[0].lower()}@example.org", mobile="+61400000000", timezone=site.timezone
                ),
                by=coordinator,
            )
        )
    # The first stays consented and waiting, their baseline questionnaire still open; the rest answer
    # it (entered by the coordinator, or on their own link) and are randomised; one then withdraws.
    for index, participant in enumerate(enrolled[1:]):
        _demo_baseline(participant, index=index, by=coordinator if index % 2 == 0 else None)
        journey.participant_randomise(participant_id=participant.pk, by=coordinator)
    journey.participant_withdraw(
        participant=enrolled[-1], scope="followup", reason="No longer wishes to answer questionnaires", by=coordinator
    )
    # Two participants joined earlier, so the demo has follow-up under way: Bo a month ago (the
    # first monthly questionnaire is open), Cam three months ago (months 1-2 missed, month 3 open).
    _backdate(enrolled[1], days=32)
    _backdate(enrolled[2], days=95)
    _demo_intervention(trial, coordinator)
    _demo_safety_and_outcomes(enrolled, coordinator)


def _demo_baseline(participant: Any, *, index: int, by: Any) -> None:
    """A complete baseline questionnaire, a little different for each participant."""
    occurrence = Occurrence.objects.get(participant=participant, instrument=BASELINE_INSTRUMENT)
    answers = {
        "date_of_birth": f"{1960 + 5 * index}-0{1 + index % 9}-1{index % 9}",
        "sex": ("female", "male")[index % 2],
        "height_cm": str(160 + 4 * index),
        "weight_kg": str(62 + 5 * index),
        "education": ("degree", "trade", "school_year_12", "diploma")[index % 4],
        "employment": ("full_time", "part_time", "retired", "self_employed")[index % 4],
        "lbp_previous_episodes": str(1 + 2 * index),
        "lbp_episode_duration": ("lt_1w", "1_4w", "1_3m")[index % 3],
        "lbp_weeks_since_recovery": str(2 + index),
        "pain_now": str(index % 3),
        "pain_week_avg": str(1 + index % 4),
        **{f"rmdq_{number:02d}": "yes" if number <= 2 + index else "no" for number in range(1, 25)},
        **{code: str(1 + (index + n) % 3) for n, code in enumerate(EQ5D_CODES)},
        "eq5d_vas": str(85 - 3 * index),
        "walking_minutes_week": str(60 + 15 * index),
        "active_days_week": str(index % 3),
    }
    source = "staff" if by is not None else "participant"
    followup.response_submit(occurrence=occurrence, raw=answers, source=source, by=by)


def _backdate(participant: Any, *, days: int) -> None:
    """Demo only: move a participant's enrolment and randomisation back (the baseline with them)
    and plan their schedule from it."""
    with audit_context(actor="demo", reason=f"Demo data: randomised {days} days ago"):
        shift = dt.timedelta(days=days)
        randomised_at = timezone.now() - shift
        Participant.objects.filter(pk=participant.pk).update(randomised_at=randomised_at, enrolled_at=F("enrolled_at") - shift)
        for baseline in Occurrence.objects.filter(participant=participant, instrument=BASELINE_INSTRUMENT):
            baseline.due_date -= shift
            baseline.opens_at -= shift
            baseline.closes_at -= shift
            baseline.completed_at = baseline.completed_at - shift if baseline.completed_at else None
            baseline.save(update_fields=["due_date", "opens_at", "closes_at", "completed_at"])
            QuestionnaireResponse.objects.filter(occurrence=baseline).update(submitted_at=F("submitted_at") - shift)
        Occurrence.objects.filter(participant=participant).exclude(instrument=BASELINE_INSTRUMENT).delete()
        participant.refresh_from_db()
        schedule_create(participant=participant)
        Session.objects.filter(participant=participant).delete()
        sessions_plan(participant=participant)


def _demo_intervention(trial: Trial, coordinator: Any) -> None:
    """Clinic hours for every site and, for participants in the walking arm who joined earlier,
    sessions at every status and a few weeks of walks."""
    for site in trial.sites.all():
        for weekday in range(5):
            for start, end in ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17))):
                WorkingHours.objects.get_or_create(
                    site=site, physiotherapist=None, weekday=weekday, start=start, defaults={"end": end}
                )
    physio = get_user_model().objects.get(username="physio")
    physio.first_name, physio.last_name = "Pat", "Physio"
    physio.save(update_fields=["first_name", "last_name"])
    now = timezone.now()
    walking = Session.objects.filter(participant__site__trial=trial, physiotherapist=physio).values_list("participant", flat=True)
    for participant in Participant.objects.filter(pk__in=set(walking)).order_by("-randomised_at"):
        sessions = list(Session.objects.filter(participant=participant).order_by("number"))
        assert participant.randomised_at is not None
        started = participant.randomised_at
        history = now - started > dt.timedelta(days=20)

        def book(session: Session, *, at: dt.datetime, mode: str) -> Session:
            day = at.date()
            free = physiotherapist_slots(
                physiotherapist=physio, trial=trial, date_from=day, date_to=day + dt.timedelta(days=14), now=at
            )
            slot = next(s for s in free if mode in s.modes)
            reason = "" if session.window_start <= slot.starts_at.date() <= session.window_end else "Demo data"
            return intervention.session_book(
                session_id=session.pk, starts_at=slot.starts_at, mode=mode, by=coordinator, now=at, reason=reason
            ).session

        if not history:
            book(sessions[0], at=now, mode="video")  # the newest: session 1 booked, nothing held yet
            continue
        first = book(sessions[0], at=started + dt.timedelta(days=1), mode="in_person")
        assert first.starts_at is not None
        intervention.session_record(
            session_id=first.pk,
            attendance="attended",
            duration_minutes=45,
            topics=["pain_science", "fear", "walking_goals"],
            notes="Walks 10 minutes most days; keen to build up.",
            prescription=intervention.PrescriptionInput(3, 15, "Add 5 minutes a walk every fortnight"),
            by=physio,
            now=first.starts_at + dt.timedelta(hours=1),
        )
        second = book(sessions[1], at=started + dt.timedelta(days=10), mode="phone")
        assert second.starts_at is not None
        intervention.session_record(
            session_id=second.pk, attendance="no_show", by=physio, now=second.starts_at + dt.timedelta(hours=1)
        )
        book(sessions[2], at=now, mode="video")  # session 3 booked ahead
        for day in range(1, (now - started).days, 2):
            walked_on = (started + dt.timedelta(days=day)).date()
            intervention.walk_log(
                participant=participant, walked_on=walked_on, minutes=15 + day % 10, steps=1800 + 40 * day, now=now
            )


def _demo_safety_and_outcomes(enrolled: list[Any], coordinator: Any) -> None:
    """Answers that derive an outcome and raise a pending adverse-event report, and events at
    every status (one serious, which alerts the safety contact)."""
    now = timezone.now()
    bo, cam, dee = enrolled[1], enrolled[2], enrolled[3]
    followup.occurrences_advance(now=now)
    month_3 = Occurrence.objects.filter(participant=cam, instrument="monthly", month=3, status="open").first()
    if month_3 is not None:  # Cam: a recurrence that limited activity, and a new health problem
        followup.response_submit(
            occurrence=month_3,
            raw={
                "lbp_any": "yes",
                "ep1_start": (now - dt.timedelta(days=20)).date().isoformat(),
                "ep1_24h": "yes",
                "ep1_interference": "3",
                "ep1_pain_avg": "5",
                "ep1_pain_worst": "8",
                "ep1_care_sought": "yes",
                "ep1_care_from": ["gp"],
                "ep1_work_days_missed": "2",
                "ep1_more": "no",
                "new_health_problem": "yes",
                "new_health_problem_details": "Sore right knee for a week",
            },
            source="participant",
            now=now,
        )
    month_1 = Occurrence.objects.filter(participant=bo, instrument="monthly", month=1, status="open").first()
    if month_1 is not None:  # Bo: no recurrence, so censored at this questionnaire
        followup.response_submit(
            occurrence=month_1, raw={"lbp_any": "no", "new_health_problem": "no"}, source="participant", now=now
        )
    today = timezone.localdate(timezone=zoneinfo.ZoneInfo(bo.site.timezone))
    mild = safety.AEInput(
        onset_date=today - dt.timedelta(days=10),
        description="Blister on the left heel",
        category="lower_extremity",
        severity="mild",
        relatedness="probably",
        expected=True,
        action_taken="New shoes advised",
        outcome="recovering",
    )
    blister = safety.adverse_event_record(participant=bo, data=mild, by=coordinator)
    safety.adverse_event_followup_add(
        event=blister, note="Healed", outcome="recovered", resolution_date=today - dt.timedelta(days=2), by=coordinator
    )
    safety.adverse_event_record(
        participant=dee,
        data=safety.AEInput(
            onset_date=today - dt.timedelta(days=3),
            description="Chest pain at rest; admitted overnight for observation",
            category="cardiovascular",
            severity="severe",
            serious=True,
            serious_criteria=["hospitalisation"],
            relatedness="unlikely",
            expected=False,
            action_taken="None",
            outcome="recovering",
        ),
        by=coordinator,
    )
    safety.adverse_event_record(
        participant=cam,
        data=safety.AEInput(
            onset_date=today - dt.timedelta(days=5),
            description="Mild headache",
            category="other",
            severity="mild",
            relatedness="not",
            outcome="not_recovered",
        ),
        by=coordinator,
    )
    pending = AdverseEvent.objects.create(
        participant=dee, source="questionnaire", status="pending", reported_text="Cold last week", aware_at=now
    )
    safety.adverse_event_dismiss(event=pending, reason="A common cold: not an adverse event in this trial", by=coordinator)


def _demo_messages() -> None:
    """Open the windows that are due and send their messages, as beat would (after the demo data
    is committed). In the participants' quiet hours the demo acts as at the end of them, so that
    something is sent whenever it is loaded."""
    now = timezone.now()
    followup.occurrences_advance(now=now)
    trial = Trial.objects.get(code=WALKBACK.code)
    policy = messaging.message_policy(trial=trial)
    at = allowed_send_time(now, zone=trial.timezone, quiet_start=policy.quiet_start, quiet_end=policy.quiet_end)
    messaging.messages_send_due(now=at)
