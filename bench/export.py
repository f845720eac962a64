"""Load generation and measurement for ``bench_export``.

The dataset is WalkBack after its last follow-up: P participants randomised over the recruitment
period, each with 12 monthly and 4 three-monthly questionnaires (about 10% missed), outcomes,
strata, contact details and consent; half in the intervention arm with six sessions (three
attended and recorded, two prescriptions) and 24 walks; adverse events for 10%, a withdrawal from
follow-up for 4%. It is written with INSERT ... SELECT in the database (pseudo-random values from
a hash, so every run makes the same data), with the audit trail's insert triggers ignored: the
export is measured, not the fabrication. ``bench_pages`` uses the same fabrication as it stands
with follow-up under way (``trial_fabricate(as_of=...)``).

Each measurement runs in a fresh process, so its peak memory is its own.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.test.utils import override_settings

from bench import fresh_process_main
from closeout.datalock.services import database_lock
from closeout.flow import PARTICIPANT_FLOW_FILL_SQL
from closeout.models import Release
from closeout.releases import catalogue
from closeout.releases.export import copy_rows, snapshot
from closeout.releases.services import release_build
from followup.models import InstrumentVersion
from followup.services import OCCURRENCE_TALLY_FILL_SQL
from messaging.services import MESSAGE_TALLY_FILL_SQL
from participants.models import ConsentDocument
from presets.services import preset_apply
from presets.walkback import WALKBACK
from safety.models import SafetyPolicy
from trial import services as trial_services
from trial.models import Arm, Site, Trial

SOURCE_TABLES = (
    "participants_participant",
    "participants_participantstratum",
    "trial_allocation",
    "participants_screening",
    "participants_session",
    "participants_sessionrecord",
    "participants_prescription",
    "participants_walk",
    "followup_occurrence",
    "followup_questionnaireresponse",
    "followup_outcome",
    "followup_outcomesummary",
    "participants_adverseevent",
    "participants_withdrawal",
)
FILLED_MODELS = (
    "participants.Screening",
    "participants.Participant",
    "participants.ParticipantStratum",
    "participants.ContactDetails",
    "participants.Consent",
    "trial.Allocation",
    "followup.Occurrence",
    "followup.QuestionnaireResponse",
    "followup.Outcome",
    "followup.OutcomeSummary",
    "intervention.Session",
    "intervention.SessionRecord",
    "intervention.Prescription",
    "intervention.Walk",
    "safety.AdverseEvent",
    "participants.Withdrawal",
)
# Staff of the throwaway database hash their passwords quickly: the export is measured, not PBKDF2.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_SETUP_SQL = [
    """INSERT INTO participants_screening (site_id, screened_on, referral, answers, eligible, reasons, outcome,
           declined_reason, recorded_by_id, created_at)
       SELECT (%(sites)s::bigint[])[1 + mod(g, %(site_count)s)], %(start)s::date + (g::bigint * %(days)s / %(total)s)::int,
              CASE WHEN mod(g, 3) = 0 THEN 'clinician' ELSE 'community' END,
              CASE WHEN g > %(n)s THEN %(ineligible)s::jsonb ELSE %(eligible)s::jsonb END, g <= %(n)s,
              CASE WHEN g > %(n)s THEN '["already_active"]'::jsonb ELSE '[]'::jsonb END,
              CASE WHEN g > %(n)s THEN 'ineligible' ELSE 'enrolled' END, '', %(user)s, now()
       FROM generate_series(1, %(total)s) g""",
    """CREATE TEMP TABLE bench_p AS
       SELECT sc.id AS screening_id, sc.site_id, s.code, s.timezone AS tz, sc.rn, sc.screened_on + 7 AS day0,
              mod(sc.rn, 2) = 0 AS walking, mod(sc.rn, 25) = 5 AND sc.screened_on + 7 + 190 < %(now)s::date AS withdrawn
       FROM (SELECT id, site_id, screened_on, row_number() OVER (ORDER BY id) AS rn
             FROM participants_screening WHERE outcome = 'enrolled' AND site_id = ANY(%(sites)s::bigint[])) sc
       JOIN trial_site s ON s.id = sc.site_id""",
    """INSERT INTO participants_participant (screening_id, site_id, study_id, status, withdrawal_scope, randomised_at,
           enrolled_at, enrolled_by_id, physiotherapist_id)
       SELECT screening_id, site_id, 'WB-' || code || '-' || lpad(rn::text, 6, '0'),
              CASE WHEN withdrawn THEN 'withdrawn' ELSE 'randomised' END, CASE WHEN withdrawn THEN 'followup' ELSE '' END,
              (day0 + time '09:00' + make_interval(mins => mod(rn, 480)::int)) AT TIME ZONE tz,
              (day0 - 1 + time '10:00') AT TIME ZONE tz, %(user)s, NULL
       FROM bench_p""",
    "ALTER TABLE bench_p ADD COLUMN id bigint",
    "UPDATE bench_p b SET id = p.id FROM participants_participant p WHERE p.screening_id = b.screening_id",
    "CREATE INDEX ON bench_p (id)",
    "ANALYZE bench_p",
    """INSERT INTO participants_participantstratum (participant_id, factor_id, level_id)
       SELECT p.id, f.id, f.levels[1 + mod(p.rn + f.id, array_length(f.levels, 1))]
       FROM bench_p p CROSS JOIN (
           SELECT f.id, array_agg(l.id ORDER BY l."order", l.code) AS levels
           FROM trial_stratificationfactor f JOIN trial_stratumlevel l ON l.factor_id = f.id
           WHERE f.trial_id = %(trial)s GROUP BY f.id) f""",
    """INSERT INTO participants_contactdetails (participant_id, email, mobile, preferred_channel, timezone)
       SELECT id, 'participant' || rn || '@bench.invalid', '+614' || lpad(rn::text, 8, '0'), 'email', tz FROM bench_p""",
    """INSERT INTO participants_consent (screening_id, participant_id, document_id, method, signed_name, taken_by_id, consented_at)
       SELECT screening_id, id, %(document)s, 'in_person', 'Bench Person ' || rn, %(user)s, (day0 - 1 + time '10:00') AT TIME ZONE tz
       FROM bench_p""",
    """INSERT INTO trial_allocation (participant_id, arm_id, method, stratum_key, slot_id, detail, randomised_by_id, randomised_at)
       SELECT p.id, CASE WHEN b.walking THEN %(walking)s ELSE %(control)s END, 'minimisation', 'bench', NULL, '{}', %(user)s,
              p.randomised_at
       FROM bench_p b JOIN participants_participant p ON p.id = b.id""",
    """INSERT INTO followup_occurrence (participant_id, instrument, month, due_date, opens_at, closes_at, status, completed_at,
           cancelled_reason)
       SELECT p.id, i.instrument, i.month, d.due, w.opens, w.closes, s.status,
              CASE WHEN s.status = 'completed' THEN w.answered END,
              CASE WHEN s.status = 'cancelled' THEN 'Withdrawn from follow-up' ELSE '' END
       FROM bench_p p
       CROSS JOIN (SELECT 'monthly' AS instrument, m AS month, 3 AS before, 14 AS after, 0 AS tp FROM generate_series(1, 12) m
                   UNION ALL SELECT 'timepoint', m, 7, 28, 1 FROM unnest(%(timepoint_months)s::int[]) m) i
       CROSS JOIN LATERAL (SELECT (p.day0 + make_interval(months => i.month))::date AS due) d
       CROSS JOIN LATERAL (SELECT (d.due - i.before + time '00:00') AT TIME ZONE p.tz AS opens,
                                  (d.due + i.after + time '00:00') AT TIME ZONE p.tz AS closes,
                                  (d.due + time '19:00') AT TIME ZONE p.tz AS answered) w
       -- As of now: answered on the due day (nine in ten), else missed once the window closed.
       CROSS JOIN LATERAL (SELECT CASE WHEN p.withdrawn AND i.month > 6 THEN 'cancelled'
                                       WHEN R(p.id, i.month * 2 + i.tp) < 0.9 AND w.answered <= %(now)s::timestamptz THEN 'completed'
                                       WHEN w.closes <= %(now)s::timestamptz THEN 'missed'
                                       WHEN w.opens <= %(now)s::timestamptz THEN 'open'
                                       ELSE 'scheduled' END AS status) s""",
    """INSERT INTO followup_questionnaireresponse (occurrence_id, instrument_version_id, answers, scores, source, entered_by_id,
           submitted_at)
       SELECT o.id, %(monthly)s, a.answers, jsonb_build_object('back_pain', a.recurrence), 'participant', NULL, o.completed_at
       FROM followup_occurrence o JOIN bench_p p ON p.id = o.participant_id
       CROSS JOIN LATERAL (SELECT R(o.id, 1) < 0.25 AS recurrence, R(o.id, 2) AS r2, R(o.id, 3) AS r3,
                                  R(o.id, 4) AS r4) x
       CROSS JOIN LATERAL (SELECT x.recurrence, CASE WHEN x.recurrence THEN jsonb_build_object(
               'lbp_any', true, 'ep1_start', to_char(o.due_date - 1 - floor(x.r2 * 25)::int, 'YYYY-MM-DD'), 'ep1_24h', true,
               'ep1_interference', floor(x.r3 * 5)::int, 'ep1_pain_avg', floor(x.r4 * 11)::int,
               'ep1_pain_worst', least(10, floor(x.r4 * 11)::int + 2), 'ep1_care_sought', x.r2 < 0.4,
               'ep1_work_days_missed', floor(x.r3 * 6)::int, 'ep1_more', false, 'new_health_problem', false)
               || CASE WHEN x.r2 < 0.4 THEN '{"ep1_care_from": ["gp"]}'::jsonb ELSE '{}'::jsonb END
             ELSE '{"lbp_any": false, "new_health_problem": false}'::jsonb END AS answers) a
       WHERE o.instrument = 'monthly' AND o.status = 'completed'""",
    """INSERT INTO followup_questionnaireresponse (occurrence_id, instrument_version_id, answers, scores, source, entered_by_id,
           submitted_at)
       SELECT a.id, %(timepoint)s, a.answers, jsonb_build_object(
                  'rmdq_total', (SELECT count(*) FROM jsonb_each(a.answers) e WHERE e.key LIKE 'rmdq%%' AND e.value = 'true'),
                  'eq5d_profile', concat(a.answers->>'eq5d_mobility', a.answers->>'eq5d_selfcare', a.answers->>'eq5d_activities',
                                         a.answers->>'eq5d_pain', a.answers->>'eq5d_anxiety'),
                  'eq5d_vas', (a.answers->>'eq5d_vas')::int,
                  'healthcare_visits', (a.answers->>'visits_gp')::int + (a.answers->>'visits_physio')::int
                                       + (a.answers->>'visits_specialist')::int + (a.answers->>'visits_emergency')::int,
                  'walking_minutes_week', (a.answers->>'walking_minutes_week')::int),
              'participant', NULL, a.completed_at
       FROM (SELECT o.id, o.completed_at,
                    jsonb_build_object(RMDQ)
                    || jsonb_build_object(
                        'eq5d_mobility', 1 + floor(R(o.id, 30) * 5)::int, 'eq5d_selfcare', 1 + floor(R(o.id, 31) * 3)::int,
                        'eq5d_activities', 1 + floor(R(o.id, 32) * 5)::int, 'eq5d_pain', 1 + floor(R(o.id, 33) * 5)::int,
                        'eq5d_anxiety', 1 + floor(R(o.id, 34) * 4)::int, 'eq5d_vas', floor(R(o.id, 35) * 101)::int,
                        'visits_gp', floor(R(o.id, 36) * 3)::int, 'visits_physio', floor(R(o.id, 37) * 4)::int,
                        'visits_specialist', floor(R(o.id, 38) * 2)::int, 'visits_emergency', floor(R(o.id, 39) * 1.2)::int,
                        'hospital_admission', R(o.id, 40) < 0.02, 'walking_minutes_week', floor(R(o.id, 41) * 600)::int
                    ) AS answers
             FROM followup_occurrence o JOIN bench_p p ON p.id = o.participant_id
             WHERE o.instrument = 'timepoint' AND o.status = 'completed') a""",
    """CREATE TEMP TABLE bench_monthly AS
       SELECT o.participant_id,
              min((r.answers->>'ep1_start')::date) FILTER (WHERE (r.answers->>'ep1_24h')::boolean) AS any_at,
              min((r.answers->>'ep1_start')::date) FILTER (WHERE (r.answers->>'ep1_24h')::boolean
                  AND (r.answers->>'ep1_interference')::int >= 2 AND (r.answers->>'ep1_pain_avg')::int >= 2)
                  AS activity_limiting_at,
              min((r.answers->>'ep1_start')::date) FILTER (WHERE (r.answers->>'ep1_24h')::boolean
                  AND (r.answers->>'ep1_care_sought')::boolean) AS care_seeking_at,
              max(o.due_date) FILTER (WHERE o.status = 'completed') AS last_completed,
              count(*) FILTER (WHERE (r.answers->>'ep1_24h')::boolean) AS recurrences,
              count(*) FILTER (WHERE (r.answers->>'ep1_care_sought')::boolean) AS care_seeking,
              coalesce(sum((r.answers->>'ep1_work_days_missed')::int), 0) AS work_days,
              count(*) FILTER (WHERE o.status = 'completed') AS completed,
              count(*) FILTER (WHERE o.status = 'missed') AS missed
       FROM followup_occurrence o JOIN bench_p p ON p.id = o.participant_id
       LEFT JOIN followup_questionnaireresponse r ON r.occurrence_id = o.id
       WHERE o.instrument = 'monthly' GROUP BY o.participant_id""",
    """INSERT INTO followup_outcome (participant_id, code, event, event_date, censored_at, censor_reason, days, source_occurrence_id,
           adjudicated, adjudicated_event, adjudicated_event_date, adjudication_reason, adjudicated_by_id, adjudicated_at, derived_at)
       SELECT p.id, c.code, e.at IS NOT NULL, e.at, CASE WHEN e.at IS NULL THEN coalesce(m.last_completed, p.day0) END,
              CASE WHEN e.at IS NOT NULL THEN '' WHEN p.withdrawn THEN 'withdrawal' ELSE 'administrative_end' END,
              coalesce(e.at, m.last_completed, p.day0) - p.day0, NULL,
              c.code = 'any' AND mod(p.rn, 100) = 7, CASE WHEN c.code = 'any' AND mod(p.rn, 100) = 7 THEN true END,
              CASE WHEN c.code = 'any' AND mod(p.rn, 100) = 7 THEN p.day0 + 40 END,
              CASE WHEN c.code = 'any' AND mod(p.rn, 100) = 7 THEN 'Reported by phone' ELSE '' END, NULL, NULL, now()
       FROM bench_p p LEFT JOIN bench_monthly m ON m.participant_id = p.id
       CROSS JOIN (VALUES ('activity_limiting'), ('any'), ('care_seeking')) c(code)
       CROSS JOIN LATERAL (SELECT CASE c.code WHEN 'any' THEN m.any_at WHEN 'activity_limiting' THEN m.activity_limiting_at
                                  ELSE m.care_seeking_at END AS at) e""",
    """INSERT INTO followup_outcomesummary (participant_id, recurrences, care_seeking_recurrences, work_days_missed,
           work_days_by_month, monthly_completed, monthly_missed, missed_in_a_row, last_missed_id, last_missed_due, derived_at)
       SELECT p.id, coalesce(m.recurrences, 0), coalesce(m.care_seeking, 0), coalesce(m.work_days, 0), '{}',
              coalesce(m.completed, 0), coalesce(m.missed, 0), coalesce(t.n, 0), t.last_id, t.due, now()
       FROM bench_p p LEFT JOIN bench_monthly m ON m.participant_id = p.id
       -- Missed since the latest completed one (the lost-to-follow-up rule reads it).
       LEFT JOIN (SELECT o.participant_id, count(*) AS n, max(o.due_date) AS due,
                         (array_agg(o.id ORDER BY o.due_date DESC, o.id DESC))[1] AS last_id
                  FROM followup_occurrence o JOIN bench_monthly lm ON lm.participant_id = o.participant_id
                  WHERE o.instrument = 'monthly' AND o.status = 'missed'
                    AND (lm.last_completed IS NULL OR o.due_date > lm.last_completed)
                  GROUP BY o.participant_id) t ON t.participant_id = p.id""",
    """INSERT INTO participants_session (participant_id, number, name, target_date, window_start, window_end, allowed_modes,
           sets_prescription, physiotherapist_id, status, starts_at, ends_at, mode, outside_window_reason, meeting_link,
           booked_by_id, booked_at, cancelled_reason, video_room)
       SELECT s.id, s.number, s.name, s.target, s.target - s.window_before_days, s.target + s.window_after_days, s.modes,
              s.sets_prescription, CASE WHEN b.status <> 'planned' THEN s.physio END, b.status,
              CASE WHEN b.status <> 'planned' THEN (s.target + time '08:00' + make_interval(mins => 50 * s.slot::int)) AT TIME ZONE s.tz END,
              CASE WHEN b.status <> 'planned' THEN (s.target + time '08:45' + make_interval(mins => 50 * s.slot::int)) AT TIME ZONE s.tz END,
              CASE WHEN b.status <> 'planned' THEN 'in_person' ELSE '' END, '', '',
              CASE WHEN b.status = 'booked' THEN %(user)s END,
              CASE WHEN b.status = 'booked' THEN %(now)s::timestamptz - interval '2 days' END, '', md5(s.id || '-' || s.number)
       FROM (SELECT p.id, p.tz, sp.number, sp.name, p.day0 + sp.target_day AS target, sp.window_before_days, sp.window_after_days,
                    sp.modes, sp.sets_prescription, (%(physios)s::bigint[])[1 + mod(p.rn, %(physio_count)s)] AS physio,
                    row_number() OVER (PARTITION BY p.day0 + sp.target_day, mod(p.rn, %(physio_count)s) ORDER BY p.id, sp.number) - 1
                        AS slot
             FROM bench_p p CROSS JOIN participants_sessionplan sp WHERE p.walking AND sp.trial_id = %(trial)s) s
       -- The first sessions attended once their day has passed; those of the next three weeks booked.
       CROSS JOIN LATERAL (SELECT CASE WHEN s.number <= %(attended_sessions)s AND s.target < %(now)s::date THEN 'attended'
                                       WHEN s.target >= %(now)s::date AND s.target < %(now)s::date + 21 THEN 'booked'
                                       ELSE 'planned' END AS status) b""",
    """INSERT INTO participants_sessionrecord (session_id, attendance, duration_minutes, topics, notes, recorded_by_id, recorded_at)
       SELECT s.id, 'attended', 40, '["pain_science", "walking_goals"]', 'Bench session notes', s.physiotherapist_id, s.ends_at
       FROM participants_session s JOIN bench_p p ON p.id = s.participant_id WHERE s.status = 'attended'""",
    """INSERT INTO participants_prescription (session_id, participant_id, walks_per_week, minutes_per_walk, progression, starts_on)
       SELECT s.id, s.participant_id, 3 + s.number / 2, 15 + 5 * s.number, 'Bench progression', s.target_date + 1
       FROM participants_session s JOIN bench_p p ON p.id = s.participant_id
       WHERE s.status = 'attended' AND s.sets_prescription""",
    """INSERT INTO participants_walk (participant_id, walked_on, minutes, steps, entered_by_id, created_at)
       SELECT p.id, p.day0 + 8 + 3 * k, 15 + floor(R(p.id, 100 + k) * 30)::int,
              CASE WHEN mod(k, 4) <> 0 THEN 1500 + floor(R(p.id, 200 + k) * 4000)::int END, NULL, now()
       FROM bench_p p CROSS JOIN generate_series(0, 23) k WHERE p.walking AND p.day0 + 8 + 3 * k < %(now)s::date""",
    """INSERT INTO participants_adverseevent (participant_id, source, status, response_id, session_id, reported_text, onset_date,
           description, category, severity, serious, serious_criteria, relatedness, expected, action_taken, outcome,
           resolution_date, dismissed_reason, aware_at, serious_since, reported_by_id, created_at, updated_at)
       SELECT p.id, 'staff', CASE WHEN mod(p.rn, 20) = 3 THEN 'open' ELSE 'resolved' END, NULL, NULL, '', p.day0 + 20 + mod(p.rn, 60)::int,
              'Bench adverse event', (%(categories)s::text[])[1 + mod(p.rn, %(category_count)s)], 'mild', false, '[]', 'unlikely',
              true, '', CASE WHEN mod(p.rn, 20) = 3 THEN 'recovering' ELSE 'recovered' END,
              CASE WHEN mod(p.rn, 20) = 3 THEN NULL ELSE p.day0 + 27 + mod(p.rn, 60)::int END, '',
              (p.day0 + 21 + mod(p.rn, 60)::int + time '11:00') AT TIME ZONE p.tz, NULL, %(user)s, now(), now()
       FROM bench_p p WHERE mod(p.rn, 10) = 3 AND p.day0 + 21 + mod(p.rn, 60)::int < %(now)s::date""",
    """INSERT INTO participants_withdrawal (participant_id, scope, reason, withdrawn_on, recorded_by_id, created_at)
       SELECT id, 'followup', 'Bench withdrawal', day0 + 190, %(user)s, now() FROM bench_p WHERE withdrawn""",
]


def _r(row: str, draw: str) -> str:
    """SQL for a stable pseudo-random number in [0, 1) for (row, draw): the same data on every run."""
    return f"(mod(abs(hashint8(({row}) * 1000 + ({draw}))::bigint), 1000000) / 1000000.0)"


def _statements(sql: Sequence[str]) -> list[str]:
    import re

    rmdq = ", ".join(f"'rmdq_{n:02d}', {_r('o.id', str(n))} < 0.3" for n in range(1, 25))
    return [
        re.sub(r"\bR\(([^,()]+), ([^()]+?)\)", lambda m: _r(m.group(1), m.group(2)), statement.replace("RMDQ", rmdq))
        for statement in sql
    ]


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
def dataset_build(*, participants: int, timepoints: bool = False, progress: Any = print) -> dict[str, Any]:
    """Fabricate the dataset in the current (throwaway) database, lock it, and return what the
    measurements need: the trial, the releases to build, the rows written."""
    from django.db import connection

    started = time.perf_counter()
    made = trial_fabricate(participants=participants, timepoints=timepoints, progress=progress)
    trial, investigator, password = made.trial, made.investigator, made.password
    lock = database_lock(trial=trial, user=investigator, password=password, meaning="Benchmark lock")
    releases = [
        Release.objects.create(trial=trial, lock=lock, number=number, variant="unblinded", created_by=cast(Any, investigator)).pk
        for number in (1, 2)
    ]
    rows = {}
    with connection.cursor() as cursor:
        for table in SOURCE_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own table names
            rows[table] = cursor.fetchone()[0]
    return {"trial": trial.pk, "releases": releases, "rows": rows, "seconds": time.perf_counter() - started}


@dataclass(frozen=True)
class Fabricated:
    trial: Trial
    coordinator: Any  # "bench", at every site
    investigator: Any  # "bench-investigator", whose password is ``password``
    password: str
    physios: list[Any]
    params: dict[str, Any]  # those the statements were given


# Follow-up under way (``as_of``): recruitment began this many months before.
RECRUITING_FOR_MONTHS = 24


@override_settings(PASSWORD_HASHERS=FAST_HASHERS)
def trial_fabricate(
    *,
    participants: int,
    timepoints: bool,
    as_of: dt.datetime | None = None,
    extra_sql: Sequence[str] = (),
    extra_models: Sequence[str] = (),
    extra_params: Callable[[Trial], dict[str, Any]] = lambda trial: {},
    progress: Any = print,
) -> Fabricated:
    """WalkBack with ``participants`` randomised participants (the module's docstring), written
    in the current database with the audit trail's insert triggers ignored.

    Without ``as_of``, every participant is past the last follow-up. With it, follow-up is under
    way at that moment: recruitment began ``RECRUITING_FOR_MONTHS`` before, randomisations run to a
    week before, and each record is as it stands then (questionnaires answered, missed, open or not
    yet open; sessions attended, or booked for the next three weeks; walks, adverse events and
    withdrawals only once their day has come). ``extra_sql`` runs after, in the same transaction,
    with the same parameters and those ``extra_params`` adds; ``extra_models`` names the models
    it fills, whose insert triggers are ignored too."""
    import secrets

    import pgtrigger
    from dateutil.relativedelta import relativedelta
    from django.apps import apps
    from django.db import connection, transaction

    password = secrets.token_urlsafe(16)
    today = as_of.date() - relativedelta(months=RECRUITING_FOR_MONTHS) if as_of else dt.date(2019, 9, 2)
    trial = preset_apply(preset=WALKBACK, today=today)
    coordinator = trial_services.staff_create(
        trial=trial,
        username="bench",
        role="coordinator",
        password=secrets.token_urlsafe(16),
        site_codes=[s.code for s in trial.sites.all()],
    )
    investigator = trial_services.staff_create(trial=trial, username="bench-investigator", role="investigator", password=password)
    physio_count = max(20, participants // 1000)
    physios = [
        trial_services.staff_create(
            trial=trial,
            username=f"bench-physio-{i}",
            role="physiotherapist",
            password=secrets.token_urlsafe(16),
            site_codes=[s.code for s in trial.sites.all()],
        )
        for i in range(physio_count)
    ]

    eligible = {c.code: c.kind == "inclusion" for c in trial.eligibility.filter(active=True)}
    # Screened up to eight days before ``as_of``: each is randomised a week after screening.
    screened_until = min(trial.recruitment_end, as_of.date() - dt.timedelta(days=8)) if as_of else trial.recruitment_end
    params = {
        "trial": trial.pk,
        "sites": [s.pk for s in Site.objects.filter(trial=trial).order_by("code")],
        "site_count": trial.sites.count(),
        "start": trial.recruitment_start,
        "days": (screened_until - trial.recruitment_start).days,
        "n": participants,
        "total": participants + participants // 5,
        "eligible": _json(eligible),
        "ineligible": _json({**eligible, "already_active": True}),
        "user": coordinator.pk,
        "document": ConsentDocument.objects.filter(trial=trial).order_by("-published_at").values_list("pk", flat=True)[0],
        "walking": Arm.objects.get(trial=trial, code="walking").pk,
        "control": Arm.objects.get(trial=trial, code="control").pk,
        "monthly": InstrumentVersion.objects.get(trial=trial, code="monthly").pk,
        "timepoint": InstrumentVersion.objects.get(trial=trial, code="timepoint").pk,
        "physios": [u.pk for u in physios],
        "physio_count": physio_count,
        "timepoint_months": [3, 6, 9, 12] if timepoints else [],
        "categories": [code for code, _ in SafetyPolicy.objects.get(trial=trial).categories],
        "category_count": len(SafetyPolicy.objects.get(trial=trial).categories),
        "now": as_of.isoformat() if as_of else "infinity",
        # After the last follow-up, sessions 1 to 3 were attended and 4 to 6 never booked; under way,
        # every session whose day has passed was attended.
        "attended_sessions": 6 if as_of else 3,
        **extra_params(trial),
    }
    triggers = [
        f"{label}:{trigger.name}"
        for label in (*FILLED_MODELS, *extra_models)
        for model in [apps.get_model(label)]
        for registered_model, trigger in pgtrigger.registered()
        if registered_model is model and trigger.name == "insert_insert"
    ]
    with pgtrigger.ignore(*triggers), transaction.atomic(), connection.cursor() as cursor:
        # Through Django's cursor, a statement also sets pgtrigger.ignore for the rest of the
        # transaction; the fabrication then runs on the driver's cursor, with named parameters.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            # A superuser skips every trigger (audit, lock guard, foreign keys) for the fabrication:
            # the rows are consistent by construction, and the throwaway database is dropped after.
            cursor.execute("SET LOCAL session_replication_role = replica")
        # The tallies counted afresh (their triggers were skipped, or counted the rows already).
        tallies = [
            "DELETE FROM followup_occurrencetally",
            OCCURRENCE_TALLY_FILL_SQL,
            "DELETE FROM messaging_messagetally",
            MESSAGE_TALLY_FILL_SQL,
            "DELETE FROM closeout_participantflow",
            PARTICIPANT_FLOW_FILL_SQL,
        ]
        for statement in _statements([*_SETUP_SQL, *extra_sql, *tallies, "ANALYZE"]):
            step = time.perf_counter()
            cursor.cursor.execute(statement, params if "%(" in statement else None)
            progress(f"setup: {' '.join(statement.split()[:3])} {time.perf_counter() - step:.1f} s")
    return Fabricated(trial, coordinator, investigator, password, physios, params)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# --- Measurements, each in a process of its own ----------------------------------------------------


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _connect(database: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = database  # before any connection opens


def measure_build(database: str, release_id: int, trace: bool) -> dict[str, Any]:
    """Build one release as the task does, timed; with ``trace``, also the Python allocation peak."""
    _connect(database)
    import tracemalloc

    import pandas  # noqa: F401 - imported once by a worker, not per build: not measured
    import pyreadstat  # noqa: F401

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    release = release_build(release_id=release_id)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if trace:
        tracemalloc.stop()
    assert release is not None
    release = Release.objects.get(pk=release_id)
    if release.status != "ready":
        raise RuntimeError(f"The build failed: {release.error}")
    return {
        "seconds": seconds,
        "rows": sum(
            f["rows"] or 0
            for f in release.files
            if f["name"].endswith(".csv") and f["name"] not in ("dictionary.csv", "manifest.csv")
        ),
        "zip_sha256": release.zip_sha256,
        "zip_bytes": release.zip_bytes,
        "files": release.files,
        "python_peak_mb": peak,
        "max_rss_mb": _max_rss_mb(),
    }


def measure_copy(database: str, directory: str) -> dict[str, Any]:
    """A plain COPY of every source table the release reads, each to a CSV file."""
    _connect(database)
    from pathlib import Path

    from django.db import connection, transaction

    started = time.perf_counter()
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for table in SOURCE_TABLES:
            with open(Path(directory) / f"{table}.csv", "wb") as out:
                rows += copy_rows(cursor, f"SELECT * FROM {table}", out.write)  # noqa: S608 - our own table names
    return {"seconds": time.perf_counter() - started, "rows": rows, "max_rss_mb": _max_rss_mb()}


def measure_queries(database: str, directory: str, trial_id: int) -> dict[str, Any]:
    """A plain COPY of the release's own tables (the same rows, from one snapshot), each to a CSV
    file: no zip, checksums, Stata/SPSS files or metadata."""
    _connect(database)
    from pathlib import Path

    trial = Trial.objects.get(pk=trial_id)
    started = time.perf_counter()
    rows = 0
    with snapshot() as cursor:
        config = catalogue.config_load(trial=trial, blinded=False, cursor=cursor)
        base = catalogue.base_cte(config)
        for table in catalogue.tables(config):
            with open(Path(directory) / table.file, "wb") as out:
                rows += copy_rows(cursor, base + table.select(), out.write)
    return {"seconds": time.perf_counter() - started, "rows": rows, "max_rss_mb": _max_rss_mb()}


def in_fresh_process(job: str, *args: Any) -> dict[str, Any]:
    """Run ``job(*args)`` in a newly started interpreter and return its result."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # The child's target is outside this module: unpickling it imports its module, and this one
    # imports models, which only a set-up Django may.
    process = context.Process(target=fresh_process_main, args=(__name__, job, args, results))
    process.start()
    outcome = results.get()
    process.join()
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
