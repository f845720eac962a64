"""Load and measurement for ``bench_pages``: the pages staff and participants use, timed under
gunicorn against a trial with follow-up under way.

The trial is ``bench.export``'s fabrication as of now (``trial_fabricate(as_of=...)``), with what a
running trial has besides: a live personal link for every participant in follow-up, the invitations
and reminders sent for each questionnaire that opened (a few failed), data queries on one response
in 40, one adverse event in ten serious, staff sign-ins and downloads, and an audit trail of every row (its
insert event, and an update event for each questionnaire that opened). The audit rows are written
directly, without the chain's hashes: nothing measured here verifies the chain.

Each page is requested as the role that uses it, with a session made in this process; the web
processes run with ``bench.settings``, which counts each request's SQL statements.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import logging
import math
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, IntegerField, Value, When
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from bench.export import FILLED_MODELS, trial_fabricate
from followup.models import Occurrence, OccurrenceStatus
from intervention.models import Session
from participants.links import access_link_issue
from participants.models import Participant, ParticipantStatus
from participants.views import PAGE_SIZE
from trial import services as trial_services
from trial import signin
from trial.auditchain import HASH_COLUMNS, event_models
from trial.selectors import trial_get_current_or_none

SLOW_MS = 150  # a page slower than this at the 95th percentile is reported
EXTRA_MODELS = ("participants.AccessLink", "messaging.Message", "closeout.DataQuery", "trial.SecurityEvent")
AUDIT_CONTEXT = '{"actor": "bench", "reason": "Fabricated for the page benchmark"}'

_PAGES_SQL = [
    """INSERT INTO followup_accesslink (participant_id, token_sha256, nonce, created_at, created_by_id, revoked_at)
       SELECT id, encode(sha256(convert_to('bench-link-' || id, 'UTF8')), 'hex'), '', randomised_at, NULL, NULL
       FROM participants_participant WHERE status = 'randomised'""",
    # Each questionnaire that opened had its invitation, and reminders 3 and 7 days after it opened
    # while it was unanswered; those not yet due are planned. One in 300 failed.
    """INSERT INTO followup_message (participant_id, occurrence_id, session_id, step, channel, planned_at, due_at, status,
           attempts, template_id, subject, payload, provider_id, last_error, cancelled_reason, sent_at, created_at)
       SELECT o.participant_id, o.id, NULL, m.step, 'email', m.at, m.at, s.status,
              CASE s.status WHEN 'planned' THEN 0 WHEN 'failed' THEN 3 ELSE 1 END, NULL, '', '{}',
              CASE WHEN s.status = 'sent' THEN 'bench-' || o.id || '-' || m.step ELSE '' END,
              CASE WHEN s.status = 'failed' THEN 'Mailbox unavailable' ELSE '' END, '',
              CASE WHEN s.status = 'sent' THEN m.at END, o.opens_at
       FROM followup_occurrence o
       CROSS JOIN LATERAL (VALUES ('invitation', o.opens_at), ('reminder-1', o.opens_at + interval '3 days'),
                                  ('reminder-2', o.opens_at + interval '7 days')) m(step, at)
       CROSS JOIN LATERAL (SELECT CASE WHEN m.at > %(now)s::timestamptz THEN 'planned'
                                       WHEN mod(o.id, 300) = 7 THEN 'failed' ELSE 'sent' END AS status) s
       WHERE o.status IN ('open', 'completed', 'missed')
         AND (m.step = 'invitation' OR o.completed_at IS NULL OR o.completed_at > m.at) AND m.at < o.closes_at""",
    "UPDATE followup_occurrence SET messages_planned_at = opens_at WHERE status = 'open'",
    """INSERT INTO trial_dataquery (trial_id, site_id, record_type, record_id, field, text, status, assignee_id, raised_by_id,
           check_code, finding_key, answer, created_at, updated_at)
       SELECT %(trial)s, p.site_id, 'followup.questionnaireresponse', r.id, 'ep1_pain_avg',
              'Pain score out of the usual range: please confirm it with the participant.', q.status, NULL, %(data_manager)s,
              '', NULL, CASE WHEN q.status = 'open' THEN '' ELSE 'Confirmed by phone.' END,
              r.submitted_at + interval '2 days', r.submitted_at + interval '2 days'
       FROM followup_questionnaireresponse r
       JOIN followup_occurrence o ON o.id = r.occurrence_id
       JOIN participants_participant p ON p.id = o.participant_id
       CROSS JOIN LATERAL (SELECT CASE WHEN mod(r.id / 40, 5) < 2 THEN 'open' WHEN mod(r.id / 40, 5) = 2 THEN 'answered'
                                       ELSE 'closed' END AS status) q
       WHERE mod(r.id, 40) = 0 AND r.submitted_at + interval '2 days' < %(now)s::timestamptz""",
    """UPDATE participants_adverseevent SET serious = true, severity = 'severe', serious_criteria = '["hospitalisation"]',
           serious_since = aware_at WHERE mod(id, 10) = 0""",
    # Two sign-in events per participant, spread over the trial so far, by every staff member.
    """INSERT INTO trial_securityevent (kind, user_id, username, ip_address, detail, created_at)
       SELECT CASE WHEN mod(g, 50) = 0 THEN 'login_failed' WHEN mod(g, 12) = 1 THEN 'download'
                   WHEN mod(g, 4) = 2 THEN 'logout' ELSE 'login' END,
              u.id, u.username, ('10.0.' || mod(g, 250) || '.' || mod(g / 250, 250))::inet,
              CASE WHEN mod(g, 12) = 1 THEN '{"file": "participants.csv"}' ELSE '{}' END::jsonb,
              %(start)s::timestamptz + (%(now)s::timestamptz - %(start)s::timestamptz) * (g::float8 / (2 * %(n)s))
       FROM generate_series(1, 2 * %(n)s) g
       JOIN auth_user u ON u.id = (%(staff)s::int[])[1 + mod(g, array_length(%(staff)s::int[], 1))]""",
    """INSERT INTO pghistory_context (id, created_at, updated_at, metadata)
       VALUES (%(context)s::uuid, now(), now(), %(context_metadata)s::jsonb)""",
]


def _audit_sql() -> list[str]:
    """The audit trail of the fabricated rows: an insert event for each, and an update event for
    each questionnaire that opened."""

    filled = {apps.get_model(label) for label in (*FILLED_MODELS, *EXTRA_MODELS)}
    statements = []
    for event in event_models():
        tracked = event.pgh_tracked_model  # type: ignore[attr-defined]
        if tracked not in filled:
            continue
        columns = ", ".join(
            f.column for f in event._meta.concrete_fields if not f.column.startswith("pgh_") and f.column not in HASH_COLUMNS
        )
        into = f"{event._meta.db_table} (pgh_created_at, pgh_label, pgh_obj_id, pgh_context_id, {columns})"
        values = f"now(), '{{label}}', {tracked._meta.pk.column}, %(context)s::uuid, {columns}"
        select = f"INSERT INTO {into} SELECT {values} FROM {tracked._meta.db_table}"  # noqa: S608 - our own names
        statements.append(select.format(label="insert"))
        if tracked._meta.label == "followup.Occurrence":
            statements.append(select.format(label="update") + " WHERE status <> 'scheduled'")
    return statements


@dataclass(frozen=True)
class PagesSetup:
    seconds: float
    rows: dict[str, int]  # by table, and occurrences and sessions by status


COUNTED_TABLES = (
    "participants_participant",
    "followup_occurrence",
    "followup_questionnaireresponse",
    "participants_session",
    "participants_walk",
    "participants_adverseevent",
    "followup_message",
    "trial_dataquery",
    "trial_securityevent",
    "participants_participantevent",
    "followup_occurrenceevent",
)


def pages_setup(*, participants: int, now: dt.datetime | None = None, progress: Callable[[str], None] = print) -> PagesSetup:
    """WalkBack with ``participants`` randomised over the last two years, follow-up under way at
    ``now``, in the current database; plus the data manager and statistician the pages need."""

    started = time.perf_counter()
    as_of = now or timezone.now()

    def more_staff(trial: Any) -> dict[str, Any]:

        data_manager = trial_services.staff_create(
            trial=trial, username="bench-datamanager", role="data_manager", password=_password()
        )
        trial_services.staff_create(trial=trial, username="bench-statistician", role="statistician", password=_password())
        return {
            "data_manager": data_manager.pk,
            "staff": list(get_user_model().objects.order_by("pk").values_list("pk", flat=True)),
            "context": str(uuid.uuid4()),
            "context_metadata": AUDIT_CONTEXT,
        }

    trial_fabricate(
        participants=participants,
        timepoints=True,
        as_of=as_of,
        extra_sql=[*_PAGES_SQL, *_audit_sql()],
        extra_models=EXTRA_MODELS,
        extra_params=more_staff,
        progress=progress,
    )
    rows = {}
    with connection.cursor() as cursor:
        for table in COUNTED_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own table names
            rows[table] = cursor.fetchone()[0]
        cursor.execute("SELECT status, count(*) FROM followup_occurrence GROUP BY status ORDER BY status")
        rows |= {f"  occurrences {status}": n for status, n in cursor.fetchall()}
        cursor.execute("SELECT status, count(*) FROM participants_session GROUP BY status ORDER BY status")
        rows |= {f"  sessions {status}": n for status, n in cursor.fetchall()}
    return PagesSetup(time.perf_counter() - started, rows)


def _password() -> str:

    return secrets.token_urlsafe(16)


# --- What is measured -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    role: str  # a username of the fabrication, or "participant" (their personal link)
    path: str


@dataclass(frozen=True)
class Targets:
    """The records the pages are about: a participant in follow-up (in the walking arm when one
    has a questionnaire open), that questionnaire, the physiotherapist of their sessions."""

    participant_id: int
    occurrence_id: int
    physiotherapist: str
    participant_pages: int  # pages of the participant list
    token: str


def targets_find() -> Targets:

    occurrence = (
        Occurrence.objects.filter(status=OccurrenceStatus.OPEN, participant__status=ParticipantStatus.RANDOMISED)
        .annotate(
            walking=Case(
                When(participant__allocation__arm__code="walking", then=Value(0)), default=1, output_field=IntegerField()
            )
        )
        .order_by("walking", "-instrument", "participant_id", "month")  # a walking participant's monthly questionnaire first
        .select_related("participant")
        .first()
    )
    if occurrence is None:
        raise RuntimeError("No questionnaire is open: the participant pages cannot be measured.")
    physio = (
        Session.objects.filter(participant=occurrence.participant, physiotherapist__isnull=False)
        .values_list("physiotherapist__username", flat=True)
        .first()
    )
    # The personal link is a new one: only its hash is stored, so the fabricated ones cannot be used.
    token = access_link_issue(participant=occurrence.participant)
    return Targets(
        participant_id=occurrence.participant_id,
        occurrence_id=occurrence.pk,
        physiotherapist=physio or "bench-physio-0",
        participant_pages=max(1, math.ceil(Participant.objects.count() / PAGE_SIZE)),
        token=token,
    )


# Each page: its name, who asks for it (a username, or "participant": by their personal link) and its
# address, with the targets' fields in braces.
PAGES = """
dashboard                          bench                /
participant list, first page       bench                /participants/
participant list, last page        bench                /participants/?page={participant_pages}
participant list (blinded role)    bench-datamanager    /participants/
participant detail                 bench                /participants/{participant_id}/
participant outcomes               bench                /participants/{participant_id}/outcomes/
screening log                      bench                /screening/
follow-up worklist                 bench                /followup/worklist/
agenda, physio's week              {physiotherapist}    /sessions/agenda/?view=week
agenda, coordinator's day          bench                /sessions/agenda/
safety overview                    bench                /safety/
adverse events list                bench                /safety/events/
data queries                       bench-datamanager    /queries/
missing data                       bench-datamanager    /quality/missing/
audit trail                        bench-datamanager    /audit/
record history (participant)       bench-datamanager    /history/participants/participant/{participant_id}/
CONSORT report                     bench                /reports/consort/
status grid                        bench                /reports/status/
DMC report                         bench-investigator   /reports/dmc/
releases                           bench-statistician   /releases/
API participants, first page       bench                /api/v1/participants/
API participants, last page        bench                /api/v1/participants/?page=last
API participant                    bench                /api/v1/participants/{participant_id}/
API participant schedule           bench                /api/v1/participants/{participant_id}/schedule/
API participant responses          bench                /api/v1/participants/{participant_id}/responses/
API participant outcomes           bench                /api/v1/participants/{participant_id}/outcomes/
API participant diary              bench                /api/v1/participants/{participant_id}/diary/
API sessions                       bench                /api/v1/sessions/
API adverse events                 bench                /api/v1/adverse-events/
API messages                       bench                /api/v1/messages/
API messages, last page            bench                /api/v1/messages/?page=last
API queries                        bench-datamanager    /api/v1/queries/
API releases                       bench-statistician   /api/v1/releases/
API CONSORT                        bench                /api/v1/reports/consort/
participant home (link)            participant          /p/{token}/
questionnaire step                 participant          /p/{token}/q/{occurrence_id}/step/1/
participant sessions               participant          /p/{token}/sessions/
participant diary                  participant          /p/{token}/diary/
"""


def pages_list(targets: Targets) -> list[Page]:
    fields = dataclasses.asdict(targets)
    rows = [re.split(r"\s{2,}", line) for line in PAGES.strip().splitlines()]
    return [Page(name, role.format(**fields), path.format(**fields)) for name, role, path in rows]


def session_cookie(*, username: str) -> str:
    """A signed-in session for ``username`` (with the second factor passed, for roles that need
    it), as the login form leaves it: the value of the session cookie."""

    user = get_user_model().objects.get(username=username)
    client = Client()
    axes = logging.getLogger("axes")
    level = axes.level
    axes.setLevel(logging.WARNING)  # not four lines per sign-in in the command's output
    try:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    finally:
        axes.setLevel(level)
    if signin.two_factor_required(user, trial_get_current_or_none()):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
            user=user, name="Bench authenticator", confirmed=True
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


@dataclass(frozen=True)
class Response:
    status: int
    ms: float
    queries: int | None
    size: int


def _get(host: str, port: int, path: str, *, cookie: str) -> Response:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            response = connection.getresponse()
            body = response.read()
        except OSError:
            return Response(0, 0.0, None, 0)
        ms = (time.perf_counter() - started) * 1000
        queries = response.getheader("X-Bench-Queries")
        return Response(response.status, ms, int(queries) if queries else None, len(body))
    finally:
        connection.close()


# --- Timing ---------------------------------------------------------------------------------------------


@dataclass
class PageFigures:
    page: Page
    statuses: set[int] = field(default_factory=set)
    ms: list[float] = field(default_factory=list)
    queries: set[int] = field(default_factory=set)
    sizes: set[int] = field(default_factory=set)

    def percentile(self, share: float) -> float:
        """Nearest rank: the smallest time at least ``share`` of the requests took no longer than."""
        ordered = sorted(self.ms)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    @property
    def status(self) -> str:
        return "/".join(str(s) for s in sorted(self.statuses))

    @staticmethod
    def _span(values: set[int]) -> str:
        return "-" if not values else str(min(values)) if len(values) == 1 else f"{min(values)}-{max(values)}"

    @property
    def row(self) -> list[str]:
        return [
            self.page.name,
            self.page.role,
            self.status,
            f"{self.percentile(0.5):.0f}",
            f"{self.percentile(0.95):.0f}",
            self._span(self.queries),
            self._span(self.sizes),
        ]


def pages_measure(
    *, host: str, port: int, pages: list[Page], cookies: dict[str, str], requests: int, warmup: int
) -> list[PageFigures]:
    """Each page ``warmup`` times unmeasured (each web worker loads its code and templates), then
    ``requests`` times in turn, one request at a time."""
    figures = []
    for page in pages:
        cookie = f"sessionid={cookies[page.role]}" if page.role in cookies else ""
        for _ in range(warmup):
            _get(host, port, page.path, cookie=cookie)
        measured = PageFigures(page)
        for _ in range(requests):
            response = _get(host, port, page.path, cookie=cookie)
            measured.statuses.add(response.status)
            measured.ms.append(response.ms)
            if response.queries is not None:
                measured.queries.add(response.queries)
            measured.sizes.add(response.size)
        figures.append(measured)
    return figures


TABLE_HEADER = ["page", "as", "status", "p50 ms", "p95 ms", "queries", "bytes"]


def table_lines(figures: list[PageFigures]) -> list[str]:
    rows = [TABLE_HEADER, *(f.row for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]

    def line(row: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))

    slow = [f"{f.page.name} ({f.percentile(0.95):.0f} ms)" for f in figures if f.percentile(0.95) > SLOW_MS]
    return [
        line(rows[0]),
        "  ".join("-" * w for w in widths),
        *(line(row) for row in rows[1:]),
        f"over {SLOW_MS} ms at p95: " + ("; ".join(slow) if slow else "none"),
    ]
