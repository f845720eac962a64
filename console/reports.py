"""Reports on the trial's progress, read from the live database: the CONSORT flow.

Every count is over the sites the user may see. Blinded roles get the pooled flow only: no count
by arm, nothing about the intervention (how many received it, who stopped it), so two trials that
differ only in who was allocated to which arm give them the same report.

The flow, as CONSORT 2010 draws it:

* **assessed**: everyone screened;
* **excluded** before randomisation, by reason: not eligible (and by criterion, a person counting
  once under each criterion they failed), eligible but declined, and not randomised for another
  reason (eligible and not yet enrolled, or enrolled and not yet or never randomised);
* **randomised**, then per arm **allocated** and **received_intervention** (attended at least one
  session of the intervention);
* **withdrawn** from follow-up (by scope: follow-up, or consent to further data use); per arm also
  **discontinued_intervention** (stopped the intervention only, still followed up);
* **lost_to_follow_up**: not withdrawn, and the last ``lost_to_followup_missed`` monthly
  questionnaires were all missed (the worklist's rule);
* **analysed** for the primary outcome by intention to treat: every randomised participant with a
  derived primary outcome; ``excluded_from_analysis`` the rest.

``assessed == excluded_total + randomised`` and, per arm, the arms add up to the pooled counts.
"""

from __future__ import annotations

import csv
import io
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q

from closeout.models import ParticipantFlow
from followup.models import InstrumentVersion, Occurrence, OccurrenceStatus, RuleKind, ScheduleRule
from followup.selectors import lost_to_followup_list
from intervention.models import Session, SessionPlan, SessionStatus
from participants.models import (
    FOLLOWUP_ENDING_SCOPES,
    Participant,
    Screening,
    ScreeningOutcome,
    WithdrawalScope,
)
from trial import access
from trial.models import Arm, EligibilityCriterion, Trial

NOT_ELIGIBLE, DECLINED, NOT_RANDOMISED = "not_eligible", "declined", "not_randomised"
EXCLUSION_LABELS = {
    NOT_ELIGIBLE: "Not eligible",
    DECLINED: "Eligible, declined to take part",
    NOT_RANDOMISED: "Not randomised (other reasons)",
}
WITHDRAWAL_LABELS = {
    WithdrawalScope.FOLLOWUP.value: "Stopped follow-up",
    WithdrawalScope.CONSENT.value: "Withdrew consent for further data use",
}


@dataclass(frozen=True)
class ArmFlow:
    code: str
    name: str
    allocated: int
    received_intervention: int
    discontinued_intervention: int
    withdrawn: int
    withdrawn_by_reason: dict[str, int]
    lost_to_follow_up: int
    analysed: int
    excluded_from_analysis: int


@dataclass(frozen=True)
class Consort:
    assessed: int
    excluded: dict[str, int]
    excluded_total: int
    ineligible_by_criterion: dict[str, int]
    randomised: int
    withdrawn: int
    withdrawn_by_reason: dict[str, int]
    lost_to_follow_up: int
    analysed: int
    excluded_from_analysis: int
    arms: list[ArmFlow] | None = None
    criterion_labels: dict[str, str] = field(default_factory=dict)

    def as_api(self) -> dict[str, Any]:
        """The API's shape: pooled counts for everyone; ``arms`` only for roles that see arms."""
        data = asdict(self)
        data.pop("criterion_labels")
        if self.arms is None:
            data.pop("arms")
        return data


def _withdrawn(row: dict[str, Any]) -> dict[str, int]:
    return {scope: row[f"withdrawn_{scope}"] for scope in WITHDRAWAL_LABELS}


def _ineligible_by_criterion(screenings: Any, criteria: dict[str, str]) -> dict[str, int]:
    """Ineligible people per criterion failed (once per person and criterion), counted in SQL over
    each screening's list of failed criteria (reading 10,000 lists into Python took 50 ms)."""
    by_criterion = dict.fromkeys(criteria, 0)
    ineligible, params = screenings.filter(outcome=ScreeningOutcome.INELIGIBLE).values("id", "reasons").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.code, COUNT(*) FROM (" + ineligible + ") AS s, LATERAL ("  # noqa: S608 (the ORM's own SQL and parameters)
            " SELECT DISTINCT jsonb_array_elements_text(CASE WHEN jsonb_typeof(s.reasons) = 'array' THEN s.reasons ELSE '[]' END)"
            " AS code) AS c GROUP BY c.code",
            params,
        )
        for code, count in cursor.fetchall():
            by_criterion[code] = by_criterion.get(code, 0) + count
    return by_criterion


def consort_counts(*, trial: Trial, user: Any, pooled: bool = False) -> Consort:
    """The CONSORT flow over the user's sites; by arm only when the user sees arms and ``pooled``
    is not asked for (the DMC's open report is pooled for every role, and skips the arms' counts).

    Every count is an aggregate in SQL (the screenings in one query, the randomised by arm in
    another), so the report reads a handful of rows whatever the size of the trial."""
    sites = access.visible_sites(user, trial=trial)
    screenings = Screening.objects.filter(site__in=sites)
    # The screenings of randomised participants (each participant's consents are to their screening).
    randomised_screenings = Participant.objects.filter(randomised_at__isnull=False, screening__isnull=False).values(
        "screening_id"
    )
    by_outcome = screenings.aggregate(
        assessed=Count("id"),
        not_eligible=Count("id", filter=Q(outcome=ScreeningOutcome.INELIGIBLE)),
        declined=Count("id", filter=Q(outcome=ScreeningOutcome.DECLINED)),
        not_randomised=Count(
            "id",
            filter=Q(outcome__in=(ScreeningOutcome.ELIGIBLE, ScreeningOutcome.ENROLLED)) & ~Q(pk__in=randomised_screenings),
        ),
    )
    criteria = {c.code: c.text for c in EligibilityCriterion.objects.filter(trial=trial).order_by("order", "pk")}
    by_criterion = _ineligible_by_criterion(screenings, criteria)

    # The randomised are counted from their flow rows (one narrow row each, kept by triggers);
    # the lost-to-follow-up rule is the worklist's own, as a subquery counted in the same pass.
    lost = lost_to_followup_list(user=user, trial=trial).order_by().values("pk")
    followup_ended = Q(withdrawal_scope__in=FOLLOWUP_ENDING_SCOPES)
    by_arm_shown = not pooled and access.can_see_allocation(user, trial=trial)
    flow = {
        "allocated": Count("pk"),
        "analysed": Count("pk", filter=Q(analysed=True)),
        "withdrawn": Count("pk", filter=followup_ended),
        "lost_to_follow_up": Count("pk", filter=Q(participant_id__in=lost)),
        **{f"withdrawn_{scope}": Count("pk", filter=Q(withdrawal_scope=scope)) for scope in WITHDRAWAL_LABELS},
    }
    randomised = ParticipantFlow.objects.filter(site__in=sites)
    by_arm: dict[Any, dict[str, Any]] = {}
    if by_arm_shown:  # what only the arms' flow shows: who received the intervention, who stopped it
        flow["received_intervention"] = Count("pk", filter=Q(received_intervention=True))
        flow["discontinued_intervention"] = Count("pk", filter=Q(withdrawal_scope=WithdrawalScope.INTERVENTION))
        by_arm = {row["arm"]: row for row in randomised.values("arm").annotate(**flow).order_by()}
        total = {name: sum(row[name] for row in by_arm.values()) for name in flow}
    else:
        total = randomised.aggregate(**flow)
    excluded = {
        NOT_ELIGIBLE: by_outcome["not_eligible"],
        DECLINED: by_outcome["declined"],
        NOT_RANDOMISED: by_outcome["not_randomised"],
    }
    arms = None
    if by_arm_shown:
        arms = []
        for arm in Arm.objects.filter(trial=trial).order_by("order", "code"):
            mine = by_arm.get(arm.pk) or dict.fromkeys(flow, 0)
            arms.append(
                ArmFlow(
                    code=arm.code,
                    name=arm.name,
                    allocated=mine["allocated"],
                    received_intervention=mine["received_intervention"],
                    discontinued_intervention=mine["discontinued_intervention"],
                    withdrawn=mine["withdrawn"],
                    withdrawn_by_reason=_withdrawn(mine),
                    lost_to_follow_up=mine["lost_to_follow_up"],
                    analysed=mine["analysed"],
                    excluded_from_analysis=mine["allocated"] - mine["analysed"],
                )
            )
    return Consort(
        assessed=by_outcome["assessed"],
        excluded=excluded,
        excluded_total=sum(excluded.values()),
        ineligible_by_criterion=by_criterion,
        randomised=total["allocated"],
        withdrawn=total["withdrawn"],
        withdrawn_by_reason=_withdrawn(total),
        lost_to_follow_up=total["lost_to_follow_up"],
        analysed=total["analysed"],
        excluded_from_analysis=total["allocated"] - total["analysed"],
        arms=arms,
        criterion_labels=criteria,
    )


def consort_csv(consort: Consort) -> str:
    """The report's numbers as CSV: one row per box of the diagram (``arm`` empty when pooled)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["arm", "count", "reason", "n"])
    writer.writerow(["", "assessed", "", consort.assessed])
    for reason, n in consort.excluded.items():
        writer.writerow(["", "excluded", reason, n])
    for code, n in consort.ineligible_by_criterion.items():
        writer.writerow(["", "not_eligible_by_criterion", code, n])
    for name in ("randomised", "withdrawn", "lost_to_follow_up", "analysed", "excluded_from_analysis"):
        writer.writerow(["", name, "", getattr(consort, name)])
    for reason, n in consort.withdrawn_by_reason.items():
        writer.writerow(["", "withdrawn_by_reason", reason, n])
    for arm in consort.arms or ():
        for name in (
            "allocated",
            "received_intervention",
            "discontinued_intervention",
            "withdrawn",
            "lost_to_follow_up",
            "analysed",
            "excluded_from_analysis",
        ):
            writer.writerow([arm.code, name, "", getattr(arm, name)])
        for reason, n in arm.withdrawn_by_reason.items():
            writer.writerow([arm.code, "withdrawn_by_reason", reason, n])
    return out.getvalue()


# --- The diagram ------------------------------------------------------------------------------

WIDTH, GAP, LINE, PAD, CHAR = 820, 36, 18, 12, 7  # pixels; CHAR: the width of a character at 13 px


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    lines: list[str]

    @property
    def text_x(self) -> int:
        return self.x + PAD

    @property
    def text_y(self) -> int:
        return self.y + PAD + 13


@dataclass(frozen=True)
class Arrow:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Diagram:
    width: int
    height: int
    boxes: list[Box]
    arrows: list[Arrow]
    description: str


def _wrap(lines: list[str], width: int) -> list[str]:
    columns = max(10, (width - 2 * PAD) // CHAR)
    return [part for line in lines for part in (textwrap.wrap(line, columns, subsequent_indent="  ") or [""])]


def _box(x: int, y: int, w: int, lines: list[str]) -> Box:
    wrapped = _wrap(lines, w)
    return Box(x, y, w, 2 * PAD + LINE * len(wrapped), wrapped)


def _down(upper: Box, lower: Box) -> Arrow:
    x = upper.x + upper.w // 2
    return Arrow(x, upper.y + upper.h, x, lower.y)


def _n(n: int) -> str:
    return f"(n = {n})"


def _followup_lines(lost: int, withdrawn: int, by_reason: dict[str, int]) -> list[str]:
    return [f"Lost to follow-up {_n(lost)}", f"Withdrew from follow-up {_n(withdrawn)}"] + [
        f"• {WITHDRAWAL_LABELS[reason]} {_n(n)}" for reason, n in by_reason.items()
    ]


def _analysis_lines(analysed: int, excluded: int) -> list[str]:
    return [f"Analysed {_n(analysed)}", f"Excluded from analysis {_n(excluded)}"]


def consort_diagram(consort: Consort) -> Diagram:
    """Boxes and arrows of the CONSORT flow, laid out for an SVG ``WIDTH`` wide."""
    centre_w = 320
    centre_x = 40
    side_x, side_w = centre_x + centre_w + 60, WIDTH - (centre_x + centre_w + 60) - 10
    boxes: list[Box] = []
    arrows: list[Arrow] = []
    assessed = _box(centre_x, 10, centre_w, [f"Assessed for eligibility {_n(consort.assessed)}"])
    excluded_lines = [f"Excluded {_n(consort.excluded_total)}"] + [
        f"• {EXCLUSION_LABELS[reason]} {_n(n)}" for reason, n in consort.excluded.items()
    ]
    excluded = _box(side_x, assessed.y + assessed.h + GAP // 2, side_w, excluded_lines)
    randomised = _box(centre_x, excluded.y + excluded.h + GAP // 2, centre_w, [f"Randomised {_n(consort.randomised)}"])
    boxes += [assessed, excluded, randomised]
    arrows.append(_down(assessed, randomised))
    middle = excluded.y + excluded.h // 2
    arrows.append(Arrow(centre_x + centre_w // 2, middle, side_x, middle))
    y = randomised.y + randomised.h + GAP
    if consort.arms:
        column = (WIDTH - 20) // len(consort.arms)
        allocations, followups = [], []
        for index, arm in enumerate(consort.arms):
            x, w = 10 + index * column + 8, column - 16
            allocations.append(
                _box(
                    x,
                    y,
                    w,
                    [
                        f"Allocated to {arm.name} {_n(arm.allocated)}",
                        f"• Received the intervention (at least one session) {_n(arm.received_intervention)}",
                        f"• Stopped the intervention only {_n(arm.discontinued_intervention)}",
                    ],
                )
            )
            arrows.append(Arrow(randomised.x + randomised.w // 2, randomised.y + randomised.h, x + w // 2, y))
        y = max(b.y + b.h for b in allocations) + GAP
        for arm, above in zip(consort.arms, allocations, strict=True):
            followups.append(
                _box(above.x, y, above.w, _followup_lines(arm.lost_to_follow_up, arm.withdrawn, arm.withdrawn_by_reason))
            )
            arrows.append(_down(above, followups[-1]))
        y = max(b.y + b.h for b in followups) + GAP
        for arm, above in zip(consort.arms, followups, strict=True):
            analysis = _box(above.x, y, above.w, _analysis_lines(arm.analysed, arm.excluded_from_analysis))
            arrows.append(_down(above, analysis))
            boxes.append(analysis)
        boxes += allocations + followups
    else:
        followup = _box(
            centre_x, y, centre_w, _followup_lines(consort.lost_to_follow_up, consort.withdrawn, consort.withdrawn_by_reason)
        )
        analysis = _box(
            centre_x,
            followup.y + followup.h + GAP,
            centre_w,
            _analysis_lines(consort.analysed, consort.excluded_from_analysis),
        )
        boxes += [followup, analysis]
        arrows += [_down(randomised, followup), _down(followup, analysis)]
    height = max(b.y + b.h for b in boxes) + 10
    description = (
        f"{consort.assessed} people were assessed for eligibility and {consort.excluded_total} were excluded; "
        f"{consort.randomised} were randomised. "
        + (
            " ".join(
                f"{arm.name}: {arm.allocated} allocated, {arm.received_intervention} received the intervention, "
                f"{arm.lost_to_follow_up} lost to follow-up, {arm.withdrawn} withdrew, {arm.analysed} analysed."
                for arm in consort.arms
            )
            if consort.arms
            else f"{consort.lost_to_follow_up} were lost to follow-up, {consort.withdrawn} withdrew, "
            f"and {consort.analysed} were analysed."
        )
    )
    return Diagram(WIDTH, height, boxes, arrows, description)


# --- Participants by timepoint ----------------------------------------------------------------

GRID_PAGE_SIZE = 50
# What each status shows as in a cell: a letter a screen reader reads with its meaning.
CELL_LETTERS = {
    "completed": "C",
    "missed": "M",
    "open": "O",
    "scheduled": "·",
    "cancelled": "X",
    "attended": "A",
    "booked": "B",
    "planned": "·",
    "no_show": "N",
    "cancelled_late": "L",
}


@dataclass(frozen=True)
class GridColumn:
    kind: str  # "questionnaire" or "session"
    code: str  # the instrument code, or "session"
    number: int  # the month, or the session's number
    group: str
    label: str


@dataclass(frozen=True)
class GridCell:
    status: str
    label: str

    @property
    def letter(self) -> str:
        return CELL_LETTERS.get(self.status, "")


@dataclass(frozen=True)
class GridRow:
    participant: Participant
    cells: list[GridCell]


def status_grid_columns(*, trial: Trial, user: Any) -> list[GridColumn]:
    """The baseline (if the trial has one), every scheduled questionnaire by month, and, for roles
    that see arms, the intervention's sessions."""
    columns: list[GridColumn] = []
    titles = dict(InstrumentVersion.objects.filter(trial=trial).order_by("published_at").values_list("code", "title"))
    if "baseline" in titles and not ScheduleRule.objects.filter(trial=trial, instrument="baseline").exists():
        columns.append(GridColumn("questionnaire", "baseline", 0, titles["baseline"], "Baseline"))
    rules = sorted(ScheduleRule.objects.filter(trial=trial), key=lambda r: (r.kind != RuleKind.MONTHLY, r.instrument))
    for rule in rules:
        months = range(1, trial.max_followup_months + 1) if rule.kind == RuleKind.MONTHLY else sorted(rule.months)
        group = titles.get(rule.instrument, rule.instrument)
        columns += [GridColumn("questionnaire", rule.instrument, month, group, f"Month {month}") for month in months]
    if access.can_see_allocation(user, trial=trial):
        columns += [
            GridColumn("session", "session", plan.number, "Sessions", plan.name)
            for plan in SessionPlan.objects.filter(trial=trial).order_by("number")
        ]
    return columns


def status_grid_participants(*, trial: Trial, user: Any, site: str = "", status: str = "") -> Any:
    """Randomised participants at the user's sites, by study id; ``site`` a site code, ``status``
    an occurrence status that at least one of their questionnaires has."""
    qs = Participant.objects.filter(site__in=access.visible_sites(user, trial=trial), randomised_at__isnull=False)
    if site:
        qs = qs.filter(site__code=site)
    if status:
        qs = qs.filter(Exists(Occurrence.objects.filter(participant=OuterRef("pk"), status=status)))
    return qs.select_related("site").order_by("study_id")


def status_grid_rows(*, participants: list[Participant], columns: list[GridColumn]) -> list[GridRow]:
    """One row per participant, one cell per column: two queries for any number of rows."""
    ids = [p.pk for p in participants]
    found: dict[tuple[int, str, int], str] = {
        (pid, code, month): status
        for pid, code, month, status in Occurrence.objects.filter(participant_id__in=ids).values_list(
            "participant_id", "instrument", "month", "status"
        )
    }
    labels: dict[str, str] = {value: str(label) for value, label in [*OccurrenceStatus.choices, *SessionStatus.choices]}
    if any(c.kind == "session" for c in columns):
        found.update(
            ((pid, "session", number), status)
            for pid, number, status in Session.objects.filter(participant_id__in=ids).values_list(
                "participant_id", "number", "status"
            )
        )
    rows = []
    for participant in participants:
        cells = []
        for column in columns:
            status = found.get((participant.pk, column.code, column.number), "")
            cells.append(GridCell(status, str(labels.get(status, "None"))))
        rows.append(GridRow(participant, cells))
    return rows


def status_grid_csv(*, participants: Any, columns: list[GridColumn]) -> Any:
    """The grid as CSV lines, a thousand participants at a time (any number of rows, bounded memory)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(["study_id", "site", *(f"{c.code}_{c.number}" for c in columns)])
    yield flush()
    batch: list[Participant] = []
    for participant in participants.iterator(chunk_size=1000):
        batch.append(participant)
        if len(batch) == 1000:
            yield _grid_lines(writer, batch, columns, flush)
            batch = []
    if batch:
        yield _grid_lines(writer, batch, columns, flush)


def _grid_lines(writer: Any, batch: list[Participant], columns: list[GridColumn], flush: Any) -> str:
    for row in status_grid_rows(participants=batch, columns=columns):
        writer.writerow([row.participant.study_id, row.participant.site.code, *(cell.status for cell in row.cells)])
    return str(flush())
