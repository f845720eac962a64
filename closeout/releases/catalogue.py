"""What a release holds: each table as one SQL query, every column described once (CSV header,
data dictionary, Data Package schema, Stata and SPSS labels).

Dates are days from randomisation: day 0 is the randomisation date in the participant's time
zone, as the follow-up schedule and the outcomes count it. No query reads a name, a contact
detail or a free-text field; the one column read from the contact-details table is the time zone
that dates day 0. The blinded variant has no arm anywhere, and leaves out the tables only the
intervention arm has (sessions, prescriptions, walking diary), as blinded roles never see them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql as pgsql

from followup import instruments
from followup.baseline import BASELINE_INSTRUMENT
from followup.models import (
    CensorReason,
    InstrumentVersion,
    OccurrenceStatus,
    OutcomeCode,
    OutcomePolicy,
    ResponseSource,
    RuleKind,
    ScheduleRule,
)
from intervention.models import Attendance, DeliveryMode, InterventionPolicy, SessionStatus
from participants import blinding
from participants.models import FOLLOWUP_ENDING_SCOPES, ParticipantStatus, ScreeningOutcome, WithdrawalScope
from safety.models import AEOutcome, AESource, AEStatus, Relatedness, SafetyPolicy, SeriousCriterion, Severity
from trial.models import Arm, EligibilityCriterion, RandomisationMethod, Site, StratificationFactor, Trial

Codes = tuple[tuple[str, str], ...]

YES_NO: Codes = (("1", "Yes"), ("0", "No"))
# The baseline questionnaire (followup: one occurrence at month 0) has a table of its own and is
# left out of the per-timepoint questionnaire tables.
BASELINE = BASELINE_INSTRUMENT  # its own table, baseline.csv; never in the follow-up tables
DATE_OF_BIRTH = "date_of_birth"
# Items never released: they identify a person (a date of birth gives the age in whole years only).
# The baseline covariates of analysis.csv, in its order, each where the baseline questionnaire has it
# (age_years and bmi are derived: whole years from the date of birth to randomisation; weight / height^2).
ANALYSIS_COVARIATES = (
    "age_years",
    "sex",
    "bmi",
    "education",
    "employment",
    "lbp_previous_episodes",
    "lbp_episode_duration",
    "lbp_weeks_since_recovery",
    "pain_now",
    "pain_week_avg",
    "rmdq_total",
    "eq5d_vas",
    "walking_minutes_week",
    "active_days_week",
)
ENTERED_BY: Codes = (
    (ResponseSource.PARTICIPANT.value, "The participant (personal link)"),
    (ResponseSource.STAFF.value, "Staff, on the participant's behalf"),
)
DAYS = "days from randomisation"
ITEM_SEPARATOR = ";"  # between the codes of a multiple-choice answer or a list


def lit(value: Any) -> str:
    return pgsql.Literal(value).as_string()


def ident(name: str) -> str:
    return pgsql.Identifier(name).as_string()


def choices(text_choices: Any, *, leave_out: Iterable[str] = ()) -> Codes:
    return tuple((str(value), str(label)) for value, label in text_choices.choices if value not in set(leave_out))


# Words Stata or SPSS refuse as variable names.
_RESERVED = frozenset(
    {"all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with"}  # SPSS
    | {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n", "_pi", "_pred"}  # Stata
    | {"_rc", "_skip", "strl", "using"}
)
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def varname(text: str) -> str:
    """A column name every target accepts: lower-case letters, digits, underscores, at most 32."""
    name = _NOT_NAME.sub("_", text.lower()).strip("_") or "v"
    if name[0].isdigit():
        name = f"v_{name}"
    if name in _RESERVED:
        name = f"{name}_"
    return name[:32]


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    type: str  # "integer", "number" or "string" (Frictionless types)
    label: str
    units: str = ""
    codes: Codes = ()
    width: int = 0  # strings without codes: the most bytes a value can have (Stata and SPSS widths)
    multiple: bool = False  # a list of codes separated by ITEM_SEPARATOR, not one code


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    description: str
    columns: tuple[Column, ...]
    source: str  # FROM ... [WHERE ...] [GROUP BY ...]
    order_by: str  # a total order: the same rows always come out in the same order
    primary_key: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        return f"{self.name}.csv"

    def select(self, *, ordered: bool = True) -> str:
        columns = ",\n  ".join(f"{column.sql} AS {ident(column.name)}" for column in self.columns)
        text = f"SELECT\n  {columns}\n{self.source}"
        return f"{text}\nORDER BY {self.order_by}" if ordered else text


# --- What the catalogue is made from: the trial's configuration, read in the build's snapshot ---


@dataclass(frozen=True)
class Factor:
    id: int
    name: str
    label: str
    levels: Codes


@dataclass(frozen=True)
class Answer:
    """An item or a score: how its JSON value becomes a column."""

    code: str
    kind: str  # bool, number, date, text, multi
    type: str
    label: str
    units: str = ""
    codes: Codes = ()
    width: int = 0


@dataclass(frozen=True)
class Instrument:
    code: str
    title: str
    items: tuple[Answer, ...]
    scores: tuple[Answer, ...]
    versions: tuple[tuple[int, str], ...]  # (InstrumentVersion id, version)
    months: tuple[int, ...]
    date_of_birth: bool = False  # asked for a date of birth (never released; the age at randomisation is)


@dataclass(frozen=True)
class Config:
    trial_id: int
    trial_code: str
    recruitment_start: dt.date
    blinded: bool
    sites: Codes
    factors: tuple[Factor, ...]
    arms: Codes
    criteria: Codes
    referral_levels: Codes
    ae_categories: Codes
    topics: Codes
    instruments: tuple[Instrument, ...]  # every instrument but the baseline (its own table)
    study_id_width: int
    locked_at: dt.datetime
    followup_end: dt.date
    max_followup_months: int
    outcome_instrument: str
    baseline: Instrument | None = None
    episodes_max: int = 1
    intervention_arm: str = ""  # the arm whose participants have sessions
    per_protocol_min_sessions: int = 0


def _answer(item: Mapping[str, Any]) -> Answer | None:
    """An item's column, or None for free text (never exported: it may name people)."""
    code, text, kind = item["code"], " ".join(str(item.get("text", item["code"])).split()), item["type"]
    if kind == "yes_no":
        return Answer(code, "bool", "integer", text, codes=YES_NO)
    if kind in ("integer", "number"):
        width = max(len(str(item.get("min", -(10**9)))), len(str(item.get("max", 10**9))))
        return Answer(code, "number", "integer" if kind == "integer" else "number", text, width=width)
    if kind == "date":
        return Answer(code, "date", "integer", text, units=DAYS)
    if kind == "choice":
        codes = tuple((str(value), str(label)) for value, label in item["choices"])
        numeric = all(isinstance(value, int) and not isinstance(value, bool) for value, _ in item["choices"])
        width = max((len(value) for value, _ in codes), default=1)
        return Answer(code, "number" if numeric else "text", "integer" if numeric else "string", text, codes=codes, width=width)
    if kind == "multi_choice":
        codes = tuple((str(value), str(label)) for value, label in item["choices"])
        width = sum(len(value) + 1 for value, _ in codes)
        return Answer(code, "multi", "string", f"{text} (codes separated by '{ITEM_SEPARATOR}')", codes=codes, width=width)
    return None


def _identifying(item: Mapping[str, Any]) -> bool:
    return instruments.is_identifying(item)


def _score(spec: Mapping[str, Any], items: Mapping[str, Answer]) -> Answer | None:
    parts = [items[code] for code in spec["items"] if code in items]
    if len(parts) != len(spec["items"]):
        return None  # a score over free text is left out with its items
    label = spec.get("label") or (parts[0].label if len(parts) == 1 else spec["code"])
    match spec["method"]:
        case "count_true":
            return Answer(spec["code"], "number", "integer", label)
        case "sum":
            integer = all(part.type == "integer" for part in parts)
            return Answer(spec["code"], "number", "integer" if integer else "number", label)
        case "concat":
            return Answer(spec["code"], "text", "string", label, width=max(1, sum(part.width for part in parts)))
        case "value":
            part = parts[0]
            return Answer(spec["code"], part.kind, part.type, label, part.units, part.codes, part.width)
    return None


def _instruments(*, trial: Trial, months_answered: Mapping[str, set[int]]) -> tuple[Instrument, ...]:
    """Each instrument's items and scores over all its published versions (the newest version's
    wording first), and the months its scores are reported at: scheduled or answered."""
    versions = list(InstrumentVersion.objects.filter(trial=trial).order_by("code", "-published_at", "-id"))
    rules = {rule.instrument: rule for rule in ScheduleRule.objects.filter(trial=trial)}
    result = []
    for code in sorted({version.code for version in versions}):
        mine = [version for version in versions if version.code == code]
        items: dict[str, Answer] = {}
        scores: dict[str, Answer] = {}
        for version in mine:
            for item in version.definition.get("items", []):
                if _identifying(item):
                    continue
                answer = _answer(item)
                if answer is not None and answer.code not in items:
                    items[answer.code] = answer
            for spec in version.definition.get("scores", []):
                score = _score(spec, items)
                if score is not None and score.code not in scores:
                    scores[score.code] = score
        rule = rules.get(code)
        scheduled: set[int] = set()
        if rule is not None:
            scheduled = set(range(1, trial.max_followup_months + 1)) if rule.kind == RuleKind.MONTHLY else set(rule.months)
        months = tuple(sorted(scheduled | months_answered.get(code, set())))
        result.append(
            Instrument(
                code=code,
                title=mine[0].title,
                items=tuple(items.values()),
                scores=tuple(scores.values()),
                versions=tuple(sorted((version.pk, version.version) for version in mine)),
                months=months,
                date_of_birth=any(
                    item.get("code") == DATE_OF_BIRTH for version in mine for item in version.definition.get("items", [])
                ),
            )
        )
    return tuple(result)


# Columns next to the strata in the participants and outcomes tables: a factor never takes their name.
_TAKEN = frozenset(
    {"study_id", "site", "arm", "status", "randomised", "enrolment_day", "withdrawal_scope", "withdrawal_day"}
    | {"randomised_day", "planned_followup_days", "itt", "per_protocol", "age_years", "sex", "bmi"}
)


def _factor_name(code: str) -> str:
    name = varname(code)
    return varname(f"stratum_{code}") if name in _TAKEN else name


def config_load(*, trial: Trial, blinded: bool, cursor: Any, locked_at: dt.datetime | None = None) -> Config:
    """Read what the catalogue needs. Call inside the build's snapshot transaction. ``locked_at``
    (the lock's moment; the trial's, else) dates what was due by the release."""
    cursor.execute(
        "SELECT o.instrument, o.month FROM followup_occurrence o "
        "JOIN participants_participant p ON p.id = o.participant_id JOIN trial_site s ON s.id = p.site_id "
        "WHERE s.trial_id = %s AND o.status = %s GROUP BY o.instrument, o.month",
        [trial.pk, OccurrenceStatus.COMPLETED],
    )
    answered: dict[str, set[int]] = {}
    for instrument, month in cursor.fetchall():
        answered.setdefault(instrument, set()).add(month)
    cursor.execute(
        "SELECT coalesce(max(octet_length(p.study_id)), 1) FROM participants_participant p "
        "JOIN trial_site s ON s.id = p.site_id WHERE s.trial_id = %s",
        [trial.pk],
    )
    study_id_width = int(cursor.fetchone()[0])
    factors = tuple(
        Factor(
            id=factor.pk,
            name=_factor_name(factor.code),
            label=factor.label,
            levels=tuple((level.code, level.label) for level in factor.levels.order_by("order", "code")),
        )
        for factor in StratificationFactor.objects.filter(trial=trial).order_by("order", "code")
    )
    referral = next((f for f in factors if f.id == trial.referral_factor_id), None)
    safety = SafetyPolicy.objects.filter(trial=trial).first()
    intervention = InterventionPolicy.objects.filter(trial=trial).select_related("arm").first()
    outcome_policy = OutcomePolicy.objects.filter(trial=trial).first()
    instruments = _instruments(trial=trial, months_answered=answered)
    baseline = next((instrument for instrument in instruments if instrument.code == BASELINE), None)
    episodes_max = max(
        (
            int(match.group(1))
            for instrument in instruments
            for item in instrument.items
            if (match := re.fullmatch(r"ep([0-9]+)_start", item.code))
        ),
        default=1,
    )
    return Config(
        trial_id=trial.pk,
        trial_code=trial.code,
        recruitment_start=trial.recruitment_start,
        blinded=blinded,
        sites=tuple((site.code, site.name) for site in Site.objects.filter(trial=trial).order_by("code")),
        factors=factors,
        arms=() if blinded else tuple((arm.code, arm.name) for arm in Arm.objects.filter(trial=trial).order_by("order", "code")),
        criteria=tuple(
            (criterion.code, f"{criterion.get_kind_display()}: {criterion.text}")
            for criterion in EligibilityCriterion.objects.filter(trial=trial).order_by("order", "code")
        ),
        referral_levels=referral.levels if referral else (),
        ae_categories=tuple((str(code), str(label)) for code, label in (safety.categories if safety else [])),
        topics=tuple((str(code), str(label)) for code, label in (intervention.topics if intervention else [])),
        instruments=tuple(instrument for instrument in instruments if instrument.code != BASELINE),
        study_id_width=study_id_width,
        locked_at=locked_at or trial.data_locked_at or dt.datetime.now(tz=dt.UTC),
        followup_end=trial.followup_end,
        max_followup_months=trial.max_followup_months,
        outcome_instrument=outcome_policy.instrument if outcome_policy else "monthly",
        baseline=baseline,
        episodes_max=episodes_max,
        intervention_arm=intervention.arm.code if intervention else "",
        per_protocol_min_sessions=intervention.per_protocol_min_sessions if intervention else 0,
    )


# --- The tables ---------------------------------------------------------------------------------


def _days(local_date_sql: str) -> str:
    return f"({local_date_sql} - b.day0)"


def _local_days(timestamp_sql: str) -> str:
    """Days from randomisation of a moment, dated in the participant's time zone."""
    return f"(({timestamp_sql} AT TIME ZONE b.tz)::date - b.day0)"


def _joined(jsonb_sql: str) -> str:
    """A JSON list as 'a;b;c', in its stored order; NULL when empty."""
    return (
        # Every query here is built from lit()/ident() and this module's own expressions.
        f"(SELECT string_agg(e.value, {lit(ITEM_SEPARATOR)} ORDER BY e.n) FROM jsonb_array_elements_text("  # noqa: S608
        f"CASE WHEN jsonb_typeof({jsonb_sql}) = 'array' THEN {jsonb_sql} ELSE jsonb_build_array({jsonb_sql}) END"
        f") WITH ORDINALITY AS e(value, n))"
    )


def _typed(jsonb_sql: str, kind: str) -> str:
    """A JSON answer or score as its column's SQL type."""
    if kind == "bool":
        return f"(CASE WHEN {jsonb_sql} = 'true'::jsonb THEN 1 WHEN {jsonb_sql} = 'false'::jsonb THEN 0 END)"
    if kind == "number":
        return f"(CASE WHEN jsonb_typeof({jsonb_sql}) = 'number' THEN ({jsonb_sql} #>> '{{}}')::numeric END)"
    if kind == "date":
        return (
            f"(CASE WHEN ({jsonb_sql} #>> '{{}}') ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' "
            f"THEN ({jsonb_sql} #>> '{{}}')::date - b.day0 END)"
        )
    if kind == "multi":
        return _joined(jsonb_sql)
    return f"NULLIF({jsonb_sql} #>> '{{}}', '')"


def _hidden_scopes() -> str:
    return ", ".join(lit(str(scope)) for scope in sorted(blinding.INTERVENTION_ONLY_SCOPES))


def base_cte(config: Config) -> str:
    """The trial's participants with day 0 and the time zone that dates it. In the blinded variant a
    withdrawal only the intervention arm can make reads as none (participants.blinding)."""
    scope = (
        f"CASE WHEN p.withdrawal_scope IN ({_hidden_scopes()}) THEN '' ELSE p.withdrawal_scope END"
        if config.blinded
        else "p.withdrawal_scope"
    )
    return f"""WITH base AS MATERIALIZED (
  SELECT p.id, p.study_id, s.code AS site, p.status, {scope} AS withdrawal_scope, p.enrolled_at,
         coalesce(NULLIF(cd.timezone, ''), s.timezone) AS tz,
         (p.randomised_at AT TIME ZONE coalesce(NULLIF(cd.timezone, ''), s.timezone))::date AS day0
  FROM participants_participant p
  JOIN trial_site s ON s.id = p.site_id
  LEFT JOIN participants_contactdetails cd ON cd.participant_id = p.id
  WHERE s.trial_id = {lit(config.trial_id)}
)
"""  # noqa: S608


def _study_id(config: Config) -> Column:
    return Column("study_id", "b.study_id", "string", "Study id", width=config.study_id_width)


def _site(config: Config, sql: str = "b.site") -> Column:
    return Column("site", sql, "string", "Site", codes=config.sites)


def _strata(config: Config) -> list[Column]:
    return [
        Column(
            factor.name,
            "(SELECT l.code FROM participants_participantstratum ps JOIN trial_stratumlevel l ON l.id = ps.level_id "  # noqa: S608
            f"WHERE ps.participant_id = b.id AND ps.factor_id = {lit(factor.id)})",
            "string",
            f"Stratum: {factor.label}",
            codes=factor.levels,
        )
        for factor in config.factors
    ]


def _arm(config: Config) -> Column:
    return Column("arm", "arm.code", "string", "Randomised arm", codes=config.arms)


def _withdrawal(config: Config) -> list[Column]:
    return [
        Column(
            "withdrawal_scope",
            "NULLIF(b.withdrawal_scope, '')",
            "string",
            "Widest withdrawal",
            codes=choices(WithdrawalScope, leave_out=blinding.INTERVENTION_ONLY_SCOPES if config.blinded else ()),
        ),
        Column(
            "withdrawal_day",
            _days(
                "(SELECT min(w.withdrawn_on) FROM participants_withdrawal w "
                "WHERE w.participant_id = b.id AND w.scope = b.withdrawal_scope)"
            ),
            "integer",
            "Withdrawal (widest scope)",
            units=DAYS,
        ),
    ]


def participants_table(config: Config) -> Table:
    return Table(
        name="participants",
        title="Participants",
        description="Every enrolled participant: site, strata, status and withdrawal. Day 0 is the randomisation date.",
        columns=(
            _study_id(config),
            _site(config),
            *_strata(config),
            Column("status", "b.status", "string", "Status", codes=choices(ParticipantStatus)),
            Column("randomised", "(b.day0 IS NOT NULL)::int", "integer", "Randomised", codes=YES_NO),
            Column("enrolment_day", _local_days("b.enrolled_at"), "integer", "Enrolment", units=DAYS),
            *_withdrawal(config),
        ),
        source="FROM base b",
        order_by="b.study_id",
        primary_key=("study_id",),
    )


def allocation_table(config: Config) -> Table:
    return Table(
        name="allocation",
        title="Allocation",
        description="The arm each randomised participant was allocated to.",
        columns=(
            _study_id(config),
            _site(config),
            _arm(config),
            Column("method", "a.method", "string", "Randomisation method", codes=choices(RandomisationMethod)),
        ),
        source="FROM base b JOIN trial_allocation a ON a.participant_id = b.id JOIN trial_arm arm ON arm.id = a.arm_id",
        order_by="b.study_id",
        primary_key=("study_id",),
    )


def screening_table(config: Config) -> Table:
    start = lit(config.recruitment_start)
    return Table(
        name="screening",
        title="Screening log",
        description="Every person assessed for eligibility (CONSORT), without any identifying data.",
        columns=(
            Column("screening_number", "row_number() OVER (ORDER BY sc.screened_on, sc.id)", "integer", "Screening number"),
            Column("site", "s.code", "string", "Site", codes=config.sites),
            Column("screened_day", f"(sc.screened_on - {start})", "integer", "Screening", units="days from recruitment start"),
            Column("referral", "NULLIF(sc.referral, '')", "string", "Referral route", codes=config.referral_levels),
            Column("eligible", "sc.eligible::int", "integer", "Eligible", codes=YES_NO),
            Column("outcome", "sc.outcome", "string", "Screening outcome", codes=choices(ScreeningOutcome)),
            Column(
                "ineligible_reasons",
                _joined("sc.reasons"),
                "string",
                f"Criteria not met (codes separated by '{ITEM_SEPARATOR}')",
                codes=config.criteria,
                multiple=True,
            ),
            *(
                Column(
                    varname(f"elig_{code}"),
                    _typed(f"(sc.answers -> {lit(code)})", "bool"),
                    "integer",
                    label,
                    codes=YES_NO,
                )
                for code, label in config.criteria
            ),
            Column("study_id", "p.study_id", "string", "Study id, if enrolled", width=config.study_id_width),
        ),
        source=(
            "FROM participants_screening sc JOIN trial_site s ON s.id = sc.site_id "
            "LEFT JOIN participants_participant p ON p.screening_id = sc.id "
            f"WHERE s.trial_id = {lit(config.trial_id)}"
        ),
        order_by="sc.screened_on, sc.id",
        primary_key=("screening_number",),
    )


def sessions_table(config: Config) -> Table:
    return Table(
        name="sessions",
        title="Education sessions",
        description="Each planned education session: when, how, attendance and topics covered. Physiotherapists "
        "are pseudonymised (PT001, ...).",
        columns=(
            _study_id(config),
            Column("session", "se.number", "integer", "Session number"),
            Column("session_name", "se.name", "string", "Session"),
            Column("target_day", _days("se.target_date"), "integer", "Target date", units=DAYS),
            Column("window_start_day", _days("se.window_start"), "integer", "Window opens", units=DAYS),
            Column("window_end_day", _days("se.window_end"), "integer", "Window closes", units=DAYS),
            Column("status", "se.status", "string", "Status", codes=choices(SessionStatus)),
            Column("mode", "NULLIF(se.mode, '')", "string", "Delivery mode", codes=choices(DeliveryMode)),
            Column("session_day", _local_days("se.starts_at"), "integer", "Session date", units=DAYS),
            Column(
                "physiotherapist",
                "CASE WHEN se.physiotherapist_id IS NOT NULL THEN 'PT' || lpad("
                "(dense_rank() OVER (ORDER BY se.physiotherapist_id NULLS LAST))::text, 3, '0') END",
                "string",
                "Physiotherapist (pseudonym)",
            ),
            Column("attendance", "sr.attendance", "string", "Attendance", codes=choices(Attendance)),
            Column("duration_minutes", "sr.duration_minutes", "integer", "Duration", units="minutes"),
            Column(
                "topics",
                _joined("sr.topics"),
                "string",
                f"Education topics covered (codes separated by '{ITEM_SEPARATOR}')",
                codes=config.topics,
                multiple=True,
            ),
            Column("sets_prescription", "se.sets_prescription::int", "integer", "Sets the walking prescription", codes=YES_NO),
        ),
        source=(
            "FROM base b JOIN participants_session se ON se.participant_id = b.id "
            "LEFT JOIN participants_sessionrecord sr ON sr.session_id = se.id"
        ),
        order_by="b.study_id, se.number",
        primary_key=("study_id", "session"),
    )


def prescriptions_table(config: Config) -> Table:
    return Table(
        name="prescriptions",
        title="Walking prescriptions",
        description="The walking prescription set at a session.",
        columns=(
            _study_id(config),
            Column("session", "se.number", "integer", "Session that set it"),
            Column("walks_per_week", "pr.walks_per_week", "integer", "Walks per week"),
            Column("minutes_per_walk", "pr.minutes_per_walk", "integer", "Minutes per walk", units="minutes"),
            Column("start_day", _days("pr.starts_on"), "integer", "Starts", units=DAYS),
        ),
        source="FROM base b JOIN participants_prescription pr ON pr.participant_id = b.id "
        "JOIN participants_session se ON se.id = pr.session_id",
        order_by="b.study_id, se.number, pr.id",
        primary_key=("study_id", "session"),
    )


def walks_table(config: Config) -> Table:
    return Table(
        name="walks",
        title="Walking diary",
        description="Each walk logged in the diary.",
        columns=(
            _study_id(config),
            Column("walk_day", _days("w.walked_on"), "integer", "Walk date", units=DAYS),
            Column("minutes", "w.minutes", "integer", "Duration", units="minutes"),
            Column("steps", "w.steps", "integer", "Steps", units="steps"),
            Column("entered_by_staff", "(w.entered_by_id IS NOT NULL)::int", "integer", "Entered by staff", codes=YES_NO),
        ),
        source="FROM base b JOIN participants_walk w ON w.participant_id = b.id",
        order_by="b.study_id, w.walked_on, w.id",
    )


def _values(rows: list[tuple[Any, ...]], columns: str, types: tuple[str, ...]) -> str:
    """A VALUES list as a subquery with typed columns (an empty one when there are no rows)."""
    if not rows:
        nulls = ", ".join(f"NULL::{t}" for t in types)
        return f"(SELECT {nulls} WHERE false) AS {columns}"
    body = ",\n    ".join("(" + ", ".join(f"{lit(v)}::{t}" for v, t in zip(row, types, strict=True)) + ")" for row in rows)
    return f"(VALUES\n    {body}) AS {columns}"


def items_table(config: Config) -> Table:
    """The answers in long form. The responses are ordered first and expanded one at a time
    (jsonb_each_text), so only each response's few items are sorted, never the whole table."""
    rows = [
        (version_id, version, instrument.code, position, item.code, item.kind)
        for instrument in config.instruments
        for version_id, version in instrument.versions
        for position, item in enumerate(instrument.items, start=1)
    ]
    items = _values(
        rows, "i(version_id, version, instrument, position, item, kind)", ("bigint", "text", "text", "int", "text", "text")
    )
    multi = (
        f"(SELECT string_agg(e.value, {lit(ITEM_SEPARATOR)} ORDER BY e.n) FROM jsonb_array_elements_text("  # noqa: S608
        "CASE WHEN left(x.value, 1) = '[' THEN x.value::jsonb ELSE jsonb_build_array(x.value) END"
        ") WITH ORDINALITY AS e(value, n))"
    )
    value = (
        "CASE x.kind WHEN 'bool' THEN CASE x.value WHEN 'true' THEN '1' WHEN 'false' THEN '0' END "
        "WHEN 'date' THEN (CASE WHEN x.value ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN x.value::date - ro.day0 END)::text "
        f"WHEN 'multi' THEN {multi} "
        "ELSE NULLIF(x.value, '') END"
    )
    instruments = tuple((instrument.code, instrument.title) for instrument in config.instruments)
    return Table(
        name="questionnaire_items",
        title="Questionnaire answers (long)",
        description="One row per item answered, with the day the questionnaire was answered and who entered it: the "
        f"value is coded as the data dictionary lists for that item (yes/no as 1/0, dates as {DAYS}, multiple choices "
        f"separated by '{ITEM_SEPARATOR}'). Free-text answers are left out; the baseline questionnaire is in baseline.csv.",
        columns=(
            Column("study_id", "ro.study_id", "string", "Study id", width=config.study_id_width),
            Column("instrument", "x.instrument", "string", "Questionnaire", codes=instruments),
            Column("version", "x.version", "string", "Questionnaire version"),
            Column("month", "ro.month", "integer", "Month of follow-up", units="months from randomisation"),
            Column("answered_day", "ro.answered_day", "integer", "Answered (in the participant's time zone)", units=DAYS),
            Column("entered_by", "ro.entered_by", "string", "Who entered the answers", codes=ENTERED_BY),
            Column("item", "x.item", "string", "Item (see the item rows of the data dictionary)"),
            Column("value", value, "string", "Answer, coded as the data dictionary lists for the item"),
        ),
        source=(
            "FROM (SELECT b.study_id, b.day0, o.instrument, o.month, r.instrument_version_id, r.answers, "  # noqa: S608
            f"{_local_days('r.submitted_at')} AS answered_day, r.source AS entered_by "
            "FROM base b JOIN followup_occurrence o ON o.participant_id = b.id "
            "JOIN followup_questionnaireresponse r ON r.occurrence_id = o.id "
            f"WHERE o.instrument <> {lit(BASELINE)} "
            "ORDER BY b.study_id, o.instrument, o.month) ro "
            "CROSS JOIN LATERAL (SELECT i.instrument, i.version, i.position, i.item, i.kind, a.value "
            f"FROM jsonb_each_text(ro.answers) AS a(key, value) JOIN {items} "
            "ON i.version_id = ro.instrument_version_id AND i.item = a.key) x"
        ),
        order_by="ro.study_id, ro.instrument, ro.month, x.position",
        primary_key=("study_id", "instrument", "month", "item"),
    )


def score_columns(config: Config) -> list[Column]:
    """One column per score and month: <score>_m03 (prefixed by the instrument if two share a code)."""
    counts: dict[str, int] = {}
    for instrument in config.instruments:
        for score in instrument.scores:
            counts[score.code] = counts.get(score.code, 0) + 1
    columns = []
    for instrument in config.instruments:
        for score in instrument.scores:
            stem = score.code if counts[score.code] == 1 else f"{instrument.code}_{score.code}"
            for month in instrument.months:
                path = f"(sc.scores -> {lit(f'{instrument.code}:{month}')} -> {lit(score.code)})"
                columns.append(
                    Column(
                        varname(f"{stem}_m{month:02d}"),
                        _typed(path, score.kind),
                        score.type,
                        f"{score.label} ({instrument.title}, month {month})",
                        units=score.units,
                        codes=score.codes,
                        width=score.width,
                        multiple=score.kind == "multi",
                    )
                )
        for month in instrument.months:
            path = f"(sc.answered -> {lit(f'{instrument.code}:{month}')})"
            columns += [
                Column(
                    varname(f"{instrument.code}_day_m{month:02d}"),
                    f"({path} ->> 'day')::int",
                    "integer",
                    f"{instrument.title}, month {month}: answered (in the participant's time zone)",
                    units=DAYS,
                ),
                Column(
                    varname(f"{instrument.code}_by_m{month:02d}"),
                    f"({path} ->> 'by')",
                    "string",
                    f"{instrument.title}, month {month}: who entered the answers",
                    codes=ENTERED_BY,
                ),
            ]
    return columns


def scores_table(config: Config) -> Table:
    return Table(
        name="questionnaire_scores",
        title="Questionnaire scores (wide)",
        description="One row per randomised participant, one column per score and month of follow-up, and for each "
        "questionnaire and month the day it was answered and who entered it.",
        columns=(_study_id(config), *score_columns(config)),
        source=(
            "FROM base b LEFT JOIN (SELECT o.participant_id, jsonb_object_agg(o.instrument || ':' || o.month, r.scores) AS scores, "  # noqa: S608
            "jsonb_object_agg(o.instrument || ':' || o.month, jsonb_build_object("
            "'day', (r.submitted_at AT TIME ZONE base.tz)::date - base.day0, 'by', r.source)) AS answered "
            "FROM base JOIN followup_occurrence o ON o.participant_id = base.id "
            "JOIN followup_questionnaireresponse r ON r.occurrence_id = o.id "
            f"WHERE o.instrument <> {lit(BASELINE)} GROUP BY o.participant_id) sc "
            "ON sc.participant_id = b.id WHERE b.day0 IS NOT NULL"
        ),
        order_by="b.study_id",
        primary_key=("study_id",),
    )


OUTCOME_LABELS = {
    OutcomeCode.ACTIVITY_LIMITING: "activity-limiting recurrence (primary)",
    OutcomeCode.ANY: "recurrence",
    OutcomeCode.CARE_SEEKING: "care-seeking recurrence",
}


def _censor_reason(name: str, what: str) -> Column:
    return Column(
        f"{name}_censor_reason",
        f"CASE WHEN NOT f.{name}_event THEN NULLIF(f.{name}_censor, '') END",
        "string",
        f"Why follow-up for {what} ended without an event",
        codes=choices(CensorReason),
    )


_ARM_JOIN = " LEFT JOIN trial_allocation a ON a.participant_id = b.id LEFT JOIN trial_arm arm ON arm.id = a.arm_id"


def _final_outcomes() -> str:
    """Per participant, each outcome's final value (``followup.services.outcome_final``): the
    adjudicated one when adjudicated, else the derived one; a censoring time only without an event.
    Columns <outcome>_event, _at (the event's or the censoring date), _censor, _adjudicated."""
    per_code = []
    for code in OutcomeCode.values:
        name = varname(code)
        only = f"FILTER (WHERE fo.code = {lit(code)})"
        per_code.append(
            f"bool_or(fo.event) {only} AS {name}_event, max(fo.at) {only} AS {name}_at, "
            f"max(fo.censor_reason) {only} AS {name}_censor, bool_or(fo.adjudicated) {only} AS {name}_adjudicated"
        )
    final = (
        "SELECT o.participant_id, o.code, o.adjudicated, "
        "(CASE WHEN o.adjudicated THEN coalesce(o.adjudicated_event, false) ELSE o.event END) "
        "AND (CASE WHEN o.adjudicated THEN o.adjudicated_event_date ELSE o.event_date END) IS NOT NULL AS event, "
        "o.censor_reason, o.censored_at, CASE WHEN o.adjudicated THEN o.adjudicated_event_date ELSE o.event_date END AS event_date "
        "FROM followup_outcome o JOIN base ON base.id = o.participant_id"
    )
    return (
        f"SELECT fo.participant_id, {', '.join(per_code)} FROM ("  # noqa: S608
        "SELECT final.participant_id, final.code, final.adjudicated, final.event, "
        "CASE WHEN final.event THEN '' ELSE final.censor_reason END AS censor_reason, "
        "CASE WHEN final.event THEN final.event_date ELSE final.censored_at END AS at "
        f"FROM ({final}) final) fo GROUP BY fo.participant_id"
    )


def outcomes_table(config: Config) -> Table:
    """Time to event, the final value of each outcome: adjudicated when adjudicated, else derived;
    a censoring time only without an event (``followup.services.outcome_final``)."""
    columns: list[Column] = [_study_id(config)]
    if not config.blinded:
        columns.append(_arm(config))
    columns += [_site(config), *_strata(config)]
    for code in OutcomeCode.values:
        name, what = varname(code), OUTCOME_LABELS[OutcomeCode(code)]
        columns += [
            Column(f"{name}_time", f"(f.{name}_at - b.day0)", "integer", f"Time to first {what} or censoring", units=DAYS),
            Column(f"{name}_event", f"f.{name}_event::int", "integer", f"First {what} observed", codes=YES_NO),
            _censor_reason(name, what),
            Column(
                f"{name}_adjudicated", f"f.{name}_adjudicated::int", "integer", f"{what.capitalize()}: adjudicated", codes=YES_NO
            ),
        ]
    columns += [
        Column("recurrences", "os.recurrences", "integer", "Recurrences reported"),
        Column("care_seeking_recurrences", "os.care_seeking_recurrences", "integer", "Care-seeking recurrences reported"),
        Column("work_days_missed", "os.work_days_missed", "integer", "Work days missed because of back pain", units="days"),
        Column("monthly_completed", "os.monthly_completed", "integer", "Monthly questionnaires completed"),
        Column("monthly_missed", "os.monthly_missed", "integer", "Monthly questionnaires missed"),
    ]
    grouped = _final_outcomes()
    arm_join = "" if config.blinded else _ARM_JOIN
    return Table(
        name="outcomes",
        title="Derived outcomes (time to event)",
        description="One row per randomised participant: for each outcome, the time to the first event or to "
        "censoring and whether the event was observed, using the final value (adjudicated when adjudicated).",
        columns=tuple(columns),
        source=(
            f"FROM base b LEFT JOIN ({grouped}) f ON f.participant_id = b.id "
            f"LEFT JOIN followup_outcomesummary os ON os.participant_id = b.id{arm_join} WHERE b.day0 IS NOT NULL"
        ),
        order_by="b.study_id",
        primary_key=("study_id",),
    )


def adverse_events_table(config: Config) -> Table:
    source_sql = "ae.source"
    source_codes = choices(AESource)
    if config.blinded:
        # A report made at an education session reveals the intervention arm: it reads as entered by staff.
        source_sql = f"CASE WHEN ae.source = {lit(AESource.SESSION.value)} THEN {lit(AESource.STAFF.value)} ELSE ae.source END"
        source_codes = choices(AESource, leave_out=[AESource.SESSION])
    return Table(
        name="adverse_events",
        title="Adverse events",
        description="Every adverse event, coded. Free-text descriptions, reports and actions are left out.",
        columns=(
            Column("ae_number", "row_number() OVER (ORDER BY b.study_id, ae.aware_at, ae.id)", "integer", "Event number"),
            _study_id(config),
            Column("source", source_sql, "string", "How it was reported", codes=source_codes),
            Column("status", "ae.status", "string", "Status", codes=choices(AEStatus)),
            Column("onset_day", _days("ae.onset_date"), "integer", "Onset", units=DAYS),
            Column("aware_day", _local_days("ae.aware_at"), "integer", "Study team aware", units=DAYS),
            Column("category", "NULLIF(ae.category, '')", "string", "Category", codes=config.ae_categories),
            Column("severity", "NULLIF(ae.severity, '')", "string", "Severity", codes=choices(Severity)),
            Column("serious", "ae.serious::int", "integer", "Serious", codes=YES_NO),
            Column(
                "serious_criteria",
                _joined("ae.serious_criteria"),
                "string",
                f"Seriousness criteria (codes separated by '{ITEM_SEPARATOR}')",
                codes=choices(SeriousCriterion),
                multiple=True,
            ),
            Column("relatedness", "NULLIF(ae.relatedness, '')", "string", "Related to the study", codes=choices(Relatedness)),
            Column("expected", "ae.expected::int", "integer", "Expected", codes=YES_NO),
            Column("outcome", "NULLIF(ae.outcome, '')", "string", "Outcome", codes=choices(AEOutcome)),
            Column("resolution_day", _days("ae.resolution_date"), "integer", "Resolved", units=DAYS),
            Column(
                "followup_reports",
                "(SELECT count(*) FROM participants_aefollowup fu WHERE fu.event_id = ae.id)",
                "integer",
                "Follow-up reports",
            ),
        ),
        source="FROM base b JOIN participants_adverseevent ae ON ae.participant_id = b.id",
        order_by="b.study_id, ae.aware_at, ae.id",
        primary_key=("ae_number",),
    )


def withdrawals_table(config: Config) -> Table:
    # The blinded variant leaves out withdrawals only the intervention arm can make (participants.blinding).
    scopes = choices(WithdrawalScope, leave_out=blinding.INTERVENTION_ONLY_SCOPES if config.blinded else ())
    return Table(
        name="withdrawals",
        title="Withdrawals",
        description="Every withdrawal (a wider scope later widens an earlier one). Reasons are free text and left out.",
        columns=(
            _study_id(config),
            Column("scope", "w.scope", "string", "What the participant withdrew from", codes=scopes),
            Column("withdrawal_day", _days("w.withdrawn_on"), "integer", "Withdrawal", units=DAYS),
        ),
        source="FROM base b JOIN participants_withdrawal w ON w.participant_id = b.id"
        + (f" WHERE w.scope NOT IN ({_hidden_scopes()})" if config.blinded else ""),
        order_by="b.study_id, w.withdrawn_on, w.id",
        primary_key=("study_id", "scope"),
    )


# --- Baseline, episodes and the analysis table -------------------------------------------------------

_BASELINE_JOIN = (
    "LEFT JOIN LATERAL (SELECT r.answers, r.scores, r.source, r.submitted_at FROM followup_occurrence o "  # noqa: S608
    "JOIN followup_questionnaireresponse r ON r.occurrence_id = o.id "
    f"WHERE o.participant_id = b.id AND o.instrument = {lit(BASELINE)} ORDER BY o.month, o.id LIMIT 1) bl ON true"
)


def _is_date(text_sql: str) -> str:
    return f"({text_sql} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$')"


def baseline_columns(config: Config) -> list[Column]:
    """The baseline questionnaire's columns: the age in whole years at randomisation (never the date
    of birth), the body mass index, every item but free text, and the scores."""
    instrument = config.baseline
    if instrument is None:
        return []
    items = {item.code: item for item in instrument.items}
    columns: list[Column] = []
    if instrument.date_of_birth and "age_years" not in items:
        dob = f"(bl.answers ->> {lit(DATE_OF_BIRTH)})"
        columns.append(
            Column(
                "age_years",
                f"(CASE WHEN {_is_date(dob)} THEN date_part('year', age(b.day0, {dob}::date))::int END)",
                "integer",
                "Age at randomisation, in whole years",
                units="years",
            )
        )
    if {"height_cm", "weight_kg"} <= set(items) and "bmi" not in items:
        height, weight = "(bl.answers -> 'height_cm')", "(bl.answers -> 'weight_kg')"
        columns.append(
            Column(
                "bmi",
                f"(CASE WHEN jsonb_typeof({height}) = 'number' AND jsonb_typeof({weight}) = 'number' "
                f"AND ({height} #>> '{{}}')::numeric > 0 THEN round(({weight} #>> '{{}}')::numeric / "
                f"((({height} #>> '{{}}')::numeric / 100) ^ 2), 1) END)",
                "number",
                "Body mass index (weight / height squared), one decimal",
                units="kg/m2",
            )
        )
    for item in instrument.items:
        columns.append(
            Column(
                varname(item.code),
                _typed(f"(bl.answers -> {lit(item.code)})", item.kind),
                item.type,
                item.label,
                units=item.units,
                codes=item.codes,
                width=item.width,
                multiple=item.kind == "multi",
            )
        )
    taken = {column.name for column in columns}
    for score in instrument.scores:
        if varname(score.code) in taken:
            continue  # a score that only repeats its item
        columns.append(
            Column(
                varname(score.code),
                _typed(f"(bl.scores -> {lit(score.code)})", score.kind),
                score.type,
                score.label,
                units=score.units,
                codes=score.codes,
                width=score.width,
                multiple=score.kind == "multi",
            )
        )
    return columns


def baseline_table(config: Config) -> Table:
    return Table(
        name="baseline",
        title="Baseline questionnaire",
        description="One row per randomised participant: the baseline answers and scores, coded as the data dictionary "
        f"lists (yes/no as 1/0, dates as {DAYS}). No date of birth (the age in whole years at randomisation instead) "
        "and no free text. Empty when the participant has no baseline answers.",
        columns=(
            _study_id(config),
            Column("answered_day", _local_days("bl.submitted_at"), "integer", "Baseline answered", units=DAYS),
            Column("entered_by", "bl.source", "string", "Who entered the baseline answers", codes=ENTERED_BY),
            *baseline_columns(config),
        ),
        source=f"FROM base b {_BASELINE_JOIN} WHERE b.day0 IS NOT NULL",
        order_by="b.study_id",
        primary_key=("study_id",),
    )


def _truthy(jsonb_sql: str) -> str:
    """``followup.outcomes._truthy``: true, "yes", "true", "True" or 1."""
    return f"coalesce({jsonb_sql} IN ('true'::jsonb, '\"yes\"'::jsonb, '\"true\"'::jsonb, '\"True\"'::jsonb, '1'::jsonb), false)"


def _integer(jsonb_sql: str) -> str:
    """``followup.outcomes._number``: a whole number, or a number cut to one; else NULL."""
    return (
        f"(CASE jsonb_typeof({jsonb_sql}) WHEN 'number' THEN trunc(({jsonb_sql} #>> '{{}}')::numeric)::int "
        f"WHEN 'string' THEN CASE WHEN ({jsonb_sql} #>> '{{}}') ~ '^\\s*[+-]?[0-9]{{1,9}}\\s*$' "
        f"THEN ({jsonb_sql} #>> '{{}}')::int END "
        f"WHEN 'boolean' THEN ({jsonb_sql} = 'true'::jsonb)::int END)"
    )


def _date(jsonb_sql: str) -> str:
    text = f"({jsonb_sql} #>> '{{}}')"
    return f"(CASE WHEN {_is_date(text)} THEN {text}::date END)"


def _planned_end(config: Config) -> str:
    """The participant's own planned end of follow-up: the earlier of ``max_followup_months`` after
    randomisation (the same day, or the month's last, as ``followup.scheduling.add_months``) and the
    trial's common end."""
    return f"LEAST((b.day0 + make_interval(months => {lit(config.max_followup_months)}))::date, {lit(config.followup_end)})"


def episodes_table(config: Config) -> Table:
    """Every reported episode of back pain, read as ``followup.outcomes.episodes`` reads a monthly
    questionnaire: version 2 (``lbp_any``, then ``ep1_*`` ... while ``ep{n}_more`` is yes) and
    version 1 (``lbp_24h`` yes: one episode of 24 hours or more)."""
    answer = "(r.answers -> (e.prefix || {}))"

    def field(name: str) -> str:
        return answer.format(lit(name))

    version_2 = "(r.answers ? 'lbp_any')"
    any_pain = _truthy("(r.answers -> 'lbp_any')")
    more = _truthy("(r.answers -> ('ep' || k || '_more'))")
    lasted = _truthy("(r.answers -> 'lbp_24h')")
    chosen = (
        f"CASE WHEN {version_2} THEN {any_pain} "  # noqa: S608
        "AND NOT EXISTS (SELECT 1 FROM generate_series(1, n.n) k "
        "WHERE NOT (r.answers ? ('ep' || k || '_start') OR r.answers ? ('ep' || k || '_24h'))) "
        "AND NOT EXISTS (SELECT 1 FROM generate_series(1, n.n - 1) k "
        f"WHERE NOT {more}) "
        f"ELSE n.n = 1 AND {lasted} END"
    )
    version_1_start = _date("(r.answers -> 'lbp_start')")
    start = f"(CASE WHEN {version_2} THEN {_date(field('start'))} ELSE {version_1_start} END)"
    dated = f"GREATEST(coalesce({start}, o.due_date), b.day0)"
    return Table(
        name="episodes",
        title="Episodes of back pain",
        description="One row per episode of low back pain reported in a monthly questionnaire (version 1 asked about "
        "the first episode of 24 hours or more only). The outcomes are derived from these: an episode that starts "
        "after the participant's own end of follow-up is reported but never an event (after_followup_end = 1).",
        columns=(
            _study_id(config),
            Column("month", "o.month", "integer", "Month of follow-up of the questionnaire", units="months from randomisation"),
            Column("episode", "n.n", "integer", "Episode number in the questionnaire (1 = the first asked about)"),
            Column("start_day", f"({start} - b.day0)", "integer", "Episode started", units=DAYS),
            Column(
                "lasted_24h",
                f"(CASE WHEN {version_2} THEN {_truthy(field('24h'))}::int ELSE 1 END)",
                "integer",
                "Lasted 24 hours or more",
                codes=YES_NO,
            ),
            Column(
                "interference",
                _integer(field("interference")),
                "integer",
                "Interference with daily activities (0 = not at all ... 4 = extremely)",
            ),
            Column("pain_avg", _integer(field("pain_avg")), "integer", "Average pain (0-10)"),
            Column("pain_worst", _integer(field("pain_worst")), "integer", "Worst pain (0-10)"),
            Column("care_sought", f"{_truthy(field('care_sought'))}::int", "integer", "Care sought", codes=YES_NO),
            Column(
                "care_from",
                f"NULLIF({_joined(field('care_from'))}, '')",
                "string",
                f"Care sought from (codes separated by '{ITEM_SEPARATOR}')",
                width=200,
                multiple=True,
            ),
            Column(
                "work_days_missed",
                f"coalesce({_integer(field('work_days_missed'))}, 0)",
                "integer",
                "Days of work missed (0 when not answered)",
                units="days",
            ),
            Column("recovered_day", f"({_date(field('recovered_on'))} - b.day0)", "integer", "Recovered", units=DAYS),
            Column(
                "after_followup_end",
                f"({dated} > {_planned_end(config)})::int",
                "integer",
                "Started after the participant's own end of follow-up (never an event)",
                codes=YES_NO,
            ),
        ),
        source=(
            "FROM base b JOIN followup_occurrence o ON o.participant_id = b.id "
            f"AND o.instrument = {lit(config.outcome_instrument)} "
            "JOIN followup_questionnaireresponse r ON r.occurrence_id = o.id "
            f"CROSS JOIN LATERAL generate_series(1, {lit(max(1, config.episodes_max))}) AS n(n) "
            f"CROSS JOIN LATERAL (SELECT CASE WHEN {version_2} THEN 'ep' || n.n || '_' ELSE '' END AS prefix) e "
            f"WHERE b.day0 IS NOT NULL AND ({chosen})"
        ),
        order_by="b.study_id, o.month, n.n",
        primary_key=("study_id", "month", "episode"),
    )


def per_protocol_sql(config: Config) -> str:
    """The per-protocol population (configured on the intervention policy): every participant stayed
    in follow-up until the first outcome questionnaire was due (no withdrawal from follow-up before
    it), and a participant of the intervention arm also attended at least ``per_protocol_min_sessions``
    sessions and never stopped the intervention (a withdrawal from the intervention only)."""
    ending = ", ".join(lit(str(scope)) for scope in FOLLOWUP_ENDING_SCOPES)
    first_due = (
        "coalesce((SELECT min(o.due_date) FROM followup_occurrence o WHERE o.participant_id = b.id "  # noqa: S608
        f"AND o.instrument = {lit(config.outcome_instrument)}), 'infinity'::date)"
    )
    attended = (
        "(SELECT count(*) FROM participants_session se WHERE se.participant_id = b.id "  # noqa: S608
        f"AND se.status = {lit(SessionStatus.ATTENDED.value)})"
    )
    return (
        "(CASE WHEN EXISTS (SELECT 1 FROM participants_withdrawal w WHERE w.participant_id = b.id "  # noqa: S608
        f"AND w.scope IN ({ending}) AND w.withdrawn_on < {first_due}) THEN 0 "
        f"WHEN arm.code = {lit(config.intervention_arm)} AND ({attended} < {lit(config.per_protocol_min_sessions)} "
        "OR EXISTS (SELECT 1 FROM participants_withdrawal w WHERE w.participant_id = b.id "
        f"AND w.scope = {lit(WithdrawalScope.INTERVENTION.value)})) THEN 0 ELSE 1 END)"
    )


def analysis_table(config: Config) -> Table:
    """One row per randomised participant, ready for a time-to-event analysis: design variables,
    baseline covariates, each outcome's time, event and censoring reason, questionnaire counts and
    the analysis populations."""
    columns: list[Column] = [_study_id(config), _site(config), *_strata(config)]
    if not config.blinded:
        columns.append(_arm(config))
    columns += [
        Column(
            "randomised_day",
            f"(b.day0 - {lit(config.recruitment_start)})",
            "integer",
            "Randomisation (calendar time)",
            units="days from recruitment start",
        ),
        Column(
            "planned_followup_days",
            f"({_planned_end(config)} - b.day0)",
            "integer",
            f"Planned follow-up: to the earlier of {config.max_followup_months} months and the common end of follow-up "
            f"({config.followup_end:%d %B %Y})",
            units="days",
        ),
    ]
    # The outcomes come before the covariates: Stata names a variable's value labels after it, with
    # a counter, in 32 characters, so the long outcome names are best among the first labelled ones.
    for code in OutcomeCode.values:
        name, what = varname(code), OUTCOME_LABELS[OutcomeCode(code)]
        columns += [
            Column(f"{name}_days", f"(f.{name}_at - b.day0)", "integer", f"Time to first {what} or censoring", units=DAYS),
            Column(f"{name}_event", f"f.{name}_event::int", "integer", f"First {what} observed", codes=YES_NO),
            _censor_reason(name, what),
        ]
    columns += _withdrawal(config)
    baseline = {column.name: column for column in baseline_columns(config)}
    columns += [baseline[name] for name in ANALYSIS_COVARIATES if name in baseline]
    columns += [
        Column(
            "questionnaires_expected",
            "q.expected",
            "integer",
            f"Outcome questionnaires ({config.outcome_instrument}) due by the database lock, or answered",
        ),
        Column("questionnaires_completed", "q.completed", "integer", "Outcome questionnaires answered"),
        Column(
            "questionnaires_missed",
            "q.expected - q.completed",
            "integer",
            "Outcome questionnaires due by the database lock and not answered",
        ),
        Column("itt", "1", "integer", "Intention-to-treat population (every randomised participant)", codes=YES_NO),
    ]
    if not config.blinded:
        columns.append(
            Column(
                "per_protocol",
                per_protocol_sql(config),
                "integer",
                f"Per-protocol population: in follow-up when the first outcome questionnaire was due; in the intervention "
                f"arm also at least {config.per_protocol_min_sessions} sessions attended and the intervention not stopped",
                codes=YES_NO,
            )
        )
    lock_day = f"({lit(config.locked_at)}::timestamptz AT TIME ZONE b.tz)::date"
    counts = (
        "LEFT JOIN LATERAL (SELECT "  # noqa: S608
        f"count(*) FILTER (WHERE o.status <> {lit(OccurrenceStatus.CANCELLED.value)} "
        f"AND (o.status = {lit(OccurrenceStatus.COMPLETED.value)} OR o.due_date <= {lock_day})) AS expected, "
        f"count(*) FILTER (WHERE o.status = {lit(OccurrenceStatus.COMPLETED.value)}) AS completed "
        f"FROM followup_occurrence o WHERE o.participant_id = b.id AND o.instrument = {lit(config.outcome_instrument)}) q ON true"
    )
    return Table(
        name="analysis",
        title="Analysis table (one row per randomised participant)",
        description="Every randomised participant once: site and strata"
        + ("" if config.blinded else ", arm")
        + ", calendar time of randomisation, planned follow-up, withdrawal, baseline covariates, for each outcome the "
        "time to the first event or to censoring (final values: adjudicated when adjudicated), whether it was "
        "observed and why follow-up ended without it, outcome questionnaires expected, answered and missed, and the "
        "analysis populations"
        + ("" if config.blinded else " (per protocol: see the per_protocol label)")
        + ". A participant without derived outcomes keeps the row, with empty outcome cells.",
        columns=tuple(columns),
        source=(
            f"FROM base b LEFT JOIN ({_final_outcomes()}) f ON f.participant_id = b.id {_BASELINE_JOIN} {counts}"
            + ("" if config.blinded else _ARM_JOIN)
            + " WHERE b.day0 IS NOT NULL"
        ),
        order_by="b.study_id",
        primary_key=("study_id",),
    )


def tables(config: Config) -> list[Table]:
    """Every table of the variant, in the release's order."""
    result = [analysis_table(config), participants_table(config)]
    if not config.blinded:
        result.append(allocation_table(config))
    result.append(screening_table(config))
    if not config.blinded:
        result += [sessions_table(config), prescriptions_table(config), walks_table(config)]
    result += [
        baseline_table(config),
        items_table(config),
        scores_table(config),
        episodes_table(config),
        outcomes_table(config),
        adverse_events_table(config),
        withdrawals_table(config),
    ]
    return result


# --- The analysis file (Stata and SPSS): the analysis table and the scores, one row each ---------


def analysis_columns(config: Config) -> list[Column]:
    analysis = list(analysis_table(config).columns)
    known = {column.name for column in analysis}
    return analysis + [column for column in scores_table(config).columns if column.name not in known]
