"""A whole trial simulated in the past through the real services, with a known truth.

For demos, training, load and validation: the analysis of a simulated trial must recover what was
simulated. Every step goes through the service a person would use (screening, enrolment,
baseline answers, randomisation, session bookings and records, questionnaire answers by the
participant or entered by staff, adverse-event reviews, withdrawals), with the clock pinned at the
step's moment (``time_machine``), and the sweep that closes questionnaire windows runs as
simulated days pass, so an unanswered questionnaire becomes missed as it would.

**The truth.** Each participant's first activity-limiting episode of back pain starts at a
Weibull time: in the control arm with median ``control_median_days`` and shape
``weibull_shape``; in the intervention arm with hazard ``hazard_ratio`` times the control hazard
(proportional hazards; the same uniform draw in both arms, so only the arm moves it). Around it,
mild episodes (shorter than 24 hours, or not limiting activity) arrive at ``mild_episodes_per_year``,
and more episodes after the first limiting one. Participants answer each monthly questionnaire
with every episode since their last answer (version 2: one block per episode, at most
``EPISODES_MAX``), miss some (``missed_rate``), have some entered by staff by phone
(``staff_entry_share``), may be lost to follow-up (``dropout_rate``: probability within a year)
or withdraw (``withdrawal_rate``). Adverse events reach staff through "new health problem"
answers, which staff review. The truth files list, per participant, the arm, the true days of
the first activity-limiting and first any-recurrence episodes, dropout and withdrawal; and every
simulated episode with whether (and in which month) it was reported.

The simulation runs step by step, each step committed by its service: interrupted, it leaves a
partly simulated trial (run it on a fresh database).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import itertools
import math
import random
import secrets
import time
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import time_machine
from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count

from followup import services as followup
from followup.models import InstrumentVersion, Occurrence, OccurrenceStatus, Outcome, QuestionnaireResponse, ResponseSource
from followup.scheduling import add_months, local_midnight
from intervention import services as intervention
from intervention.models import Attendance, Session, WorkingHours
from intervention.selectors import intervention_policy, physiotherapist_slots
from messaging.models import Message
from participants import services as journey
from participants.models import Participant
from presets.instrument_library import CARE_CHOICES, EPISODES_MAX, MONTHLY_EPISODES
from safety import services as safety
from safety.models import AdverseEvent, AEStatus
from trial import hooks as trial_hooks
from trial import services as trial_services
from trial.errors import ApplicationError, Conflict
from trial.models import Allocation, RandomisationSlot, RoleCode, Trial

# The tables that grow as the simulated trial runs, and how often (simulated days) the planner's
# statistics of them are refreshed (``Simulation._analyse``).
ANALYSED_MODELS = (Participant, Occurrence, QuestionnaireResponse, Outcome, Message, Session, Allocation, AdverseEvent)
ANALYSE_EVERY_DAYS = 14

SIMULATED_BY = "simulate_trial"


class SimulationRefused(ApplicationError):
    """The trial cannot be simulated (it has real participants, or a setting is out of range)."""


@dataclass(frozen=True)
class SimulationConfig:
    participants: int
    hazard_ratio: float
    control_median_days: float
    seed: int
    weibull_shape: float = 1.0
    dropout_rate: float = 0.08  # probability of being lost to follow-up within a year
    missed_rate: float = 0.10  # probability that a questionnaire goes unanswered
    staff_entry_share: float = 0.15  # of the answered ones, the share entered by staff by phone
    adverse_event_rate: float = 0.8  # adverse events per participant-year
    withdrawal_rate: float = 0.05  # probability of withdrawing during follow-up
    mild_episodes_per_year: float = 2.0
    later_episodes_per_year: float = 1.5  # further episodes after the first activity-limiting one
    excluded_share: float = 0.2  # of the people screened, those not enrolled (ineligible or declined)
    recruitment_months: int | None = None  # default: the trial's own recruitment period
    followup_after_months: int | None = None  # default: the trial's own, from recruitment end to the common end
    ended_days_ago: int = 60  # the common end of follow-up, before today: every window has closed

    def check(self) -> None:
        problems = []
        if self.participants < 1:
            problems.append("--participants must be at least 1")
        if not self.hazard_ratio > 0:
            problems.append("--hazard-ratio must be above 0")
        if not self.control_median_days > 0:
            problems.append("--control-median-days must be above 0")
        if not self.weibull_shape > 0:
            problems.append("--weibull-shape must be above 0")
        for name in ("dropout_rate", "missed_rate", "staff_entry_share", "withdrawal_rate"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be from 0 to below 1")
        if not 0 <= self.excluded_share < 1:
            problems.append("--excluded-share must be from 0 to below 1")
        for name in ("adverse_event_rate", "mild_episodes_per_year", "later_episodes_per_year"):
            if getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} cannot be negative")
        if self.recruitment_months is not None and self.recruitment_months < 1:
            problems.append("--recruitment-months must be at least 1")
        if self.followup_after_months is not None and self.followup_after_months < 1:
            problems.append("--followup-after-months must be at least 1")
        if problems:
            raise SimulationRefused("The simulation settings are not valid: " + "; ".join(problems) + ".")


# --- The truth: pure functions of a random stream -----------------------------------------------


@dataclass
class Episode:
    day: int  # days from randomisation to its start
    duration_days: int  # recovered on day + duration_days
    lasted_24h: bool
    interference: int
    pain_avg: int
    pain_worst: int
    care_sought: bool
    care_from: tuple[str, ...]
    work_days_missed: int
    activity_limiting: bool
    reported_month: int | None = None

    @property
    def end(self) -> int:
        return self.day + self.duration_days


def weibull_day(*, u: float, median_days: float, shape: float, hazard_ratio: float) -> int:
    """The day of a proportional-hazards Weibull time: S(t) = exp(-(t/scale)^shape * HR), drawn by
    inversion from the uniform ``u`` (the same ``u`` in both arms)."""
    scale = median_days / math.log(2) ** (1 / shape)
    return int(scale * (-math.log(u) / hazard_ratio) ** (1 / shape))


def _poisson_days(rng: random.Random, *, per_year: float, start: float, end: float) -> Iterator[int]:
    if per_year <= 0:
        return
    t = start
    while True:
        t += rng.expovariate(per_year / 365.25)
        if t >= end:
            return
        yield int(t)


def _lasting_episode(
    rng: random.Random, day: int, *, duration: int, interference: int, pain_avg: int, care: bool, limiting: bool
) -> Episode:
    return Episode(
        day=day,
        duration_days=duration,
        lasted_24h=True,
        interference=interference,
        pain_avg=pain_avg,
        pain_worst=min(10, pain_avg + rng.randint(0, 3)),
        care_sought=care,
        care_from=_care_from(rng) if care else (),
        work_days_missed=rng.randint(0, min(duration, 5)) if limiting else 0,
        activity_limiting=limiting,
    )


def _limiting_episode(rng: random.Random, day: int, *, interference_threshold: int, pain_threshold: int) -> Episode:
    interference = rng.randint(max(interference_threshold, 0), 4)
    pain_avg = rng.randint(max(pain_threshold, 2), 8)
    care = rng.random() < 0.35
    duration = rng.randint(2, 30)
    return _lasting_episode(rng, day, duration=duration, interference=interference, pain_avg=pain_avg, care=care, limiting=True)


def _mild_episode(rng: random.Random, day: int, *, interference_threshold: int, pain_threshold: int) -> Episode:
    """Not activity-limiting: shorter than 24 hours (however bad), or too little interference or pain."""
    if rng.random() < 0.45:
        pain_avg = rng.randint(1, 7)
        return Episode(day, 0, False, rng.randint(0, 4), pain_avg, min(10, pain_avg + rng.randint(0, 2)), False, (), 0, False)
    if pain_threshold > 0 and rng.random() < 0.3:  # limited activity, but the pain stayed low
        interference, pain_avg = rng.randint(max(interference_threshold, 0), 4), rng.randint(0, pain_threshold - 1)
    else:
        interference, pain_avg = rng.randint(0, max(interference_threshold - 1, 0)), rng.randint(1, 6)
    care = rng.random() < 0.08
    return _lasting_episode(
        rng, day, duration=rng.randint(1, 6), interference=interference, pain_avg=pain_avg, care=care, limiting=False
    )


def _care_from(rng: random.Random) -> tuple[str, ...]:
    codes = [code for code, _label in CARE_CHOICES]
    return tuple(sorted(rng.sample(codes, rng.choice((1, 1, 1, 2))), key=codes.index))


def episodes_simulate(
    rng: random.Random,
    *,
    limiting_day: int,
    horizon_days: int,
    mild_per_year: float,
    later_per_year: float,
    interference_threshold: int = 2,
    pain_threshold: int = 2,
) -> list[Episode]:
    """Every episode of one participant up to ``horizon_days``: the first activity-limiting one on
    ``limiting_day`` (kept whatever else happens: it is the truth under test), later ones after
    it, and mild ones wherever they do not overlap another (a new episode starts after recovery)."""
    thresholds = {"interference_threshold": interference_threshold, "pain_threshold": pain_threshold}
    kept: list[Episode] = []
    if limiting_day < horizon_days:
        first = _limiting_episode(rng, limiting_day, **thresholds)
        kept.append(first)
        last_end = first.end
        for day in _poisson_days(rng, per_year=later_per_year, start=first.end, end=horizon_days):
            if day <= last_end:
                continue
            later = _limiting_episode(rng, day, **thresholds) if rng.random() < 0.6 else _mild_episode(rng, day, **thresholds)
            kept.append(later)
            last_end = later.end
    for day in _poisson_days(rng, per_year=mild_per_year, start=0, end=min(horizon_days, limiting_day)):
        mild = _mild_episode(rng, day, **thresholds)
        if all(mild.end < other.day or mild.day > other.end for other in kept):
            kept.append(mild)
    return sorted(kept, key=lambda e: e.day)


def episodes_answers(reported: list[Episode], *, randomised_on: dt.date, answered_on: dt.date) -> dict[str, Any]:
    """The monthly questionnaire (version 2) answers that report these episodes."""
    answers: dict[str, Any] = {"lbp_any": "yes" if reported else "no"}
    for number, episode in enumerate(reported, start=1):
        prefix = f"ep{number}_"
        answers[f"{prefix}start"] = (randomised_on + dt.timedelta(days=episode.day)).isoformat()
        answers[f"{prefix}24h"] = "yes" if episode.lasted_24h else "no"
        answers[f"{prefix}interference"] = str(episode.interference)
        answers[f"{prefix}pain_avg"] = str(episode.pain_avg)
        answers[f"{prefix}pain_worst"] = str(episode.pain_worst)
        answers[f"{prefix}care_sought"] = "yes" if episode.care_sought else "no"
        if episode.care_sought:
            answers[f"{prefix}care_from"] = list(episode.care_from)
            if "other" in episode.care_from:
                answers[f"{prefix}care_from_other"] = "Massage therapist"
        answers[f"{prefix}work_days_missed"] = str(episode.work_days_missed)
        recovered = randomised_on + dt.timedelta(days=episode.end)
        if recovered < answered_on:
            answers[f"{prefix}recovered_on"] = recovered.isoformat()
        if number < EPISODES_MAX:
            answers[f"{prefix}more"] = "yes" if number < len(reported) else "no"
    return answers


def answers_generate(
    definition: Mapping[str, Any], rng: random.Random, *, today: dt.date, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Plausible answers to any questionnaire, by item type and code (baseline, three-monthly).
    ``context``: ``prior_gt2`` (more than two previous episodes: the stratification answer) and
    ``age`` in years."""
    answers: dict[str, Any] = {}
    for item in definition["items"]:
        code, kind = item["code"], item["type"]
        value: Any
        if kind == "yes_no":
            chance = 0.15 if code.startswith("rmdq_") else 0.02 if "hospital" in code else 0.3
            value = "yes" if rng.random() < chance else "no"
        elif kind in ("integer", "number"):
            value = _number_for(code, item, rng, context)
        elif kind == "date":
            if code == "date_of_birth":
                value = (today - dt.timedelta(days=int(float(context.get("age", 45)) * 365.25) + rng.randint(1, 300))).isoformat()
            else:
                value = (today - dt.timedelta(days=rng.randint(0, 20))).isoformat()
        elif kind == "choice":
            choices = [choice[0] for choice in item["choices"]]
            weights = [0.5**i for i in range(len(choices))] if code.startswith("eq5d_") else [1.0] * len(choices)
            value = str(rng.choices(choices, weights=weights)[0])
        elif kind == "multi_choice":
            value = [item["choices"][rng.randrange(len(item["choices"]))][0]]
        else:
            value = "Simulated answer"
        answers[code] = value
    return answers


def _number_for(code: str, item: Mapping[str, Any], rng: random.Random, context: Mapping[str, Any]) -> str:
    low, high = item.get("min"), item.get("max")
    guesses: dict[str, Callable[[], float]] = {
        "height_cm": lambda: rng.gauss(170, 9),
        "weight_kg": lambda: rng.gauss(80, 15),
        "lbp_previous_episodes": lambda: rng.randint(3, 20) if context.get("prior_gt2") else rng.randint(0, 2),
        "lbp_weeks_since_recovery": lambda: rng.randint(0, 20),
        "pain_now": lambda: rng.randint(0, 3),
        "pain_week_avg": lambda: rng.randint(0, 4),
        "eq5d_vas": lambda: rng.randint(55, 95),
        "walking_minutes_week": lambda: rng.randint(30, 400),
        "active_days_week": lambda: rng.randint(0, 2),
    }
    guess = guesses.get(code, lambda: rng.randint(0, 3) if code.startswith("visits_") else (low or 0) + rng.randint(0, 5))()
    if low is not None:
        guess = max(guess, low)
    if high is not None:
        guess = min(guess, high)
    return f"{guess:.1f}" if item["type"] == "number" else str(int(guess))


# --- Participants as the simulation sees them ----------------------------------------------------


@dataclass
class AdverseTruth:
    day: int
    category: str
    severity: str
    serious: bool
    duration_days: int
    reported_month: int | None = None


@dataclass
class Subject:
    index: int
    rng: random.Random
    site: Any
    prior: str
    referral: str
    enrol_at: dt.datetime
    u_limiting: float
    dropout_day: int | None
    withdraws: bool
    withdrawal_fraction: float
    mild_seed: int
    participant: Participant | None = None
    arm: str = ""
    randomised_on: dt.date | None = None
    followup_days: int = 0
    followup_ends_on: dt.date | None = None
    limiting_day: int = 0
    episodes: list[Episode] = field(default_factory=list)
    adverse: list[AdverseTruth] = field(default_factory=list)
    withdrawal_scope: str = ""
    withdrawal_day: int | None = None
    withdrawn_followup: bool = False
    withdrawn_intervention: bool = False
    reported_until: int = 0  # episodes starting before this day were asked about already
    age: int = 45

    def day_of(self, moment: dt.datetime) -> int:
        assert self.randomised_on is not None
        return (moment.astimezone(zoneinfo.ZoneInfo(self.site.timezone)).date() - self.randomised_on).days

    def lost_by(self, moment: dt.datetime) -> bool:
        return self.dropout_day is not None and self.day_of(moment) >= self.dropout_day


@dataclass
class SimulationResult:
    participants: int
    screened: int
    randomised: dict[str, int]
    responses: int
    sessions_held: int
    adverse_events: int
    withdrawals: int
    seconds: float
    seconds_by_step: dict[str, float]
    truth_path: Path
    episodes_path: Path


# --- The run ------------------------------------------------------------------------------------


def trial_simulate(
    *, trial: Trial, config: SimulationConfig, truth_path: Path, today: dt.date | None = None, progress: Any = None
) -> SimulationResult:
    """Simulate ``config.participants`` participants of ``trial`` in the past (see the module).

    Refuses a trial with randomised participants. Moves the trial's recruitment dates and common
    end of follow-up into the past (so that, ``ended_days_ago`` before ``today``, follow-up is over).
    """
    config.check()
    started = time.perf_counter()
    today = today or dt.date.today()  # noqa: DTZ011 - a calendar day to plan from; every moment below is aware
    if Participant.objects.filter(site__trial=trial, randomised_at__isnull=False).exists():
        raise SimulationRefused(
            f"{trial.name} already has randomised participants: a simulation only runs on a trial where nobody is "
            "randomised yet (use a fresh database, e.g. after 'python manage.py setup_walkback')."
        )
    if trial.data_locked_at is not None:
        raise SimulationRefused(f"{trial.name} is locked: nothing can be simulated in it.")
    sim = _Simulation(trial=trial, config=config, today=today, progress=progress)
    sim.prepare()
    sim.run()
    truth, episodes = _truth_write(sim.subjects, truth_path)
    counts = dict(
        Allocation.objects.filter(participant__site__trial=trial)
        .values("arm__code")
        .annotate(n=Count("id"))
        .order_by("arm__code")
        .values_list("arm__code", "n")
    )
    return SimulationResult(
        participants=len(sim.subjects),
        screened=sim.screened,
        randomised=counts,
        responses=sim.counts["responses"],
        sessions_held=sim.counts["sessions"],
        adverse_events=sim.counts["adverse_events"],
        withdrawals=sim.counts["withdrawals"],
        seconds=time.perf_counter() - started,
        seconds_by_step=dict(sorted(sim.seconds.items(), key=lambda kv: -kv[1])),
        truth_path=truth,
        episodes_path=episodes,
    )


class _Simulation:
    def __init__(self, *, trial: Trial, config: SimulationConfig, today: dt.date, progress: Any) -> None:
        self.trial, self.config, self.today, self.progress = trial, config, today, progress
        self.rng = random.Random(f"{config.seed}:trial")
        self.queue: list[tuple[dt.datetime, int, str, Any]] = []
        self.order = itertools.count()
        self.subjects: list[Subject] = []
        self.seconds: dict[str, float] = {}
        self.counts = {"responses": 0, "sessions": 0, "adverse_events": 0, "withdrawals": 0}
        self.screened = 0
        self.swept_on: dt.date | None = None
        self.analysed_on: dt.date | None = None
        self.traveller: Any = None
        self.coordinator: Any = None
        self.physios: dict[int, Any] = {}
        policy = followup.outcome_policy(trial=trial)
        self.thresholds = {
            "interference_threshold": policy.interference_threshold,
            "pain_threshold": policy.pain_threshold if policy.pain_threshold is not None else 0,
        }
        self.walking_arm: str | None = None

    # -- set-up

    def _dates(self) -> tuple[dt.date, dt.date, dt.date]:
        trial, config = self.trial, self.config
        months = config.recruitment_months or max(_months_between(trial.recruitment_start, trial.recruitment_end), 1)
        after = config.followup_after_months or max(_months_between(trial.recruitment_end, trial.followup_end), 1)
        followup_end = self.today - dt.timedelta(days=config.ended_days_ago)
        recruitment_end = followup_end - relativedelta(months=after)
        return recruitment_end - relativedelta(months=months), recruitment_end, followup_end

    def prepare(self) -> None:
        trial = self.trial
        start, end, followup_end = self._dates()
        self.start_at = local_midnight(start, trial.timezone) - dt.timedelta(days=2)
        self.traveller = time_machine.travel(self.start_at, tick=False)
        self.traveller.start()
        try:
            trial.recruitment_start, trial.recruitment_end, trial.followup_end = start, end, followup_end
            trial_services.configuration_record_save(
                obj=trial,
                changed_fields=["recruitment_start", "recruitment_end", "followup_end"],
                structural=False,
                reason=f"{SIMULATED_BY}: the simulated trial recruits from {start} to {end}, follow-up ends {followup_end}",
            )
            trial_hooks.run_followup_end_changed(trial)  # nobody is randomised: nothing to re-plan
            self._monthly_version_2()
            self._staff()
            if not RandomisationSlot.objects.filter(trial=trial).exists():
                trial_services.randomisation_list_generate(
                    trial=trial, seed=self._list_seed(), per_stratum=self.config.participants // 2 + 20, by=SIMULATED_BY
                )
        finally:
            self.traveller.stop()
        policy = intervention_policy(trial=trial)
        self.walking_arm = policy.arm.code if policy is not None else None
        self._plan_people(start, end)

    def _list_seed(self) -> str:
        return f"{SIMULATED_BY}-public-seed-{self.config.seed}"

    def _monthly_version_2(self) -> None:
        """Answers are written in version 2 of the monthly questionnaire (episodes): publish it
        (before the simulated trial starts) when the trial still asks version 1."""
        versions = InstrumentVersion.objects.filter(trial=self.trial, code="monthly")
        current = versions.filter(published_at__lte=self.start_at).order_by("-published_at").first()
        current = current or versions.order_by("published_at").first()
        if current is not None and current.version == MONTHLY_EPISODES["version"]:
            return
        if versions.filter(version=MONTHLY_EPISODES["version"]).exists():
            raise SimulationRefused(
                "The monthly questionnaire's version 2 was published after the simulated trial would start, so its "
                "questionnaires would ask version 1: simulate on a fresh database."
            )
        followup.instrument_publish(trial=self.trial, definition=MONTHLY_EPISODES)

    def _staff(self) -> None:
        """A coordinator for every site and a physiotherapist at each, with clinic hours."""
        trial = self.trial
        users = {u.username: u for u in get_user_model().objects.filter(username__startswith="sim-")}
        sites = list(trial.sites.order_by("code"))
        name = "sim-coordinator"
        self.coordinator = users.get(name) or trial_services.staff_create(
            trial=trial,
            username=name,
            role=RoleCode.COORDINATOR,
            password=secrets.token_urlsafe(24),
            site_codes=[s.code for s in sites],
            first_name="Simulated",
            last_name="Coordinator",
        )
        for site in sites:
            name = f"sim-physio-{site.code.lower()}"
            self.physios[site.pk] = users.get(name) or trial_services.staff_create(
                trial=trial,
                username=name,
                role=RoleCode.PHYSIOTHERAPIST,
                password=secrets.token_urlsafe(24),
                site_codes=[site.code],
                first_name="Simulated",
                last_name=f"Physio {site.code}",
            )
            if not WorkingHours.objects.filter(site=site).exists():  # configuration, as the demo sets it
                WorkingHours.objects.bulk_create(
                    WorkingHours(site=site, weekday=weekday, start=start, end=finish)
                    for weekday in range(5)
                    for start, finish in ((dt.time(8), dt.time(12)), (dt.time(13), dt.time(17)))
                )

    def _plan_people(self, start: dt.date, end: dt.date) -> None:
        config, rng = self.config, self.rng
        sites = list(self.trial.sites.order_by("code"))
        days = max((end - start).days, 1)
        referrals = list(self.trial.referral_factor.levels.values_list("code", flat=True)) if self.trial.referral_factor else []
        offsets = sorted(rng.uniform(0, days) for _ in range(config.participants))
        dropout_per_day = -math.log(1 - config.dropout_rate) / 365.25 if config.dropout_rate > 0 else 0.0
        for index, offset in enumerate(offsets):
            person = random.Random(f"{config.seed}:{index}")
            site = sites[person.randrange(len(sites))]
            day = start + dt.timedelta(days=int(offset))
            enrol_at = local_midnight(day, site.timezone) + dt.timedelta(hours=9, minutes=person.randrange(7 * 60))
            dropout = int(person.expovariate(dropout_per_day)) if dropout_per_day > 0 else None
            subject = Subject(
                index=index,
                rng=person,
                site=site,
                prior=person.choice(("yes", "no")),
                referral=person.choice(referrals) if referrals else "",
                enrol_at=enrol_at,
                u_limiting=1.0 - person.random(),  # in (0, 1]
                dropout_day=dropout,
                withdraws=person.random() < config.withdrawal_rate,
                withdrawal_fraction=person.uniform(0.05, 0.95),
                mild_seed=person.randrange(2**31),
                age=person.randint(25, 75),
            )
            self.subjects.append(subject)
            self._at(enrol_at, "enrol", subject)
        excluded = round(config.participants * config.excluded_share / (1 - config.excluded_share))
        for _ in range(excluded):
            site = sites[rng.randrange(len(sites))]
            day = start + dt.timedelta(days=int(rng.uniform(0, days)))
            self._at(local_midnight(day, site.timezone) + dt.timedelta(hours=9, minutes=rng.randrange(420)), "exclude", site)

    # -- the clock and the queue

    def _at(self, moment: dt.datetime, kind: str, payload: Any) -> None:
        heapq.heappush(self.queue, (moment, next(self.order), kind, payload))

    def run(self) -> None:
        handlers: dict[str, Callable[[dt.datetime, Any], None]] = {
            "exclude": self._exclude,
            "enrol": self._enrol,
            "answer": self._answer,
            "book": self._book,
            "record": self._record,
            "review": self._review,
            "withdraw": self._withdraw,
        }
        end = dt.datetime.now(tz=dt.UTC)  # the real time, read before the clock is pinned
        self.traveller = time_machine.travel(self.start_at, tick=False)
        traveller = self.traveller.start()
        done = 0
        try:
            while self.queue:
                moment, _order, kind, payload = heapq.heappop(self.queue)
                traveller.move_to(moment)
                self._sweep(moment)
                began = time.perf_counter()
                handlers[kind](moment, payload)
                self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - began
                if kind == "enrol":
                    done += 1
                    if self.progress and done % 100 == 0:
                        self.progress(f"{done} participants randomised (simulated {moment:%Y-%m-%d})")
        finally:
            self.traveller.stop()
        began = time.perf_counter()
        followup.occurrences_advance(now=end)  # now: every window of the simulated trial has closed
        self.seconds["sweep"] = self.seconds.get("sweep", 0.0) + time.perf_counter() - began

    def _sweep(self, moment: dt.datetime) -> None:
        """The windows sweep, once a simulated day (beat runs it every few minutes)."""
        if self.swept_on == moment.date():
            return
        began = time.perf_counter()
        if self.analysed_on is None or (moment.date() - self.analysed_on).days >= ANALYSE_EVERY_DAYS:
            self._analyse()
            self.analysed_on = moment.date()
        followup.occurrences_advance(now=moment)
        self.swept_on = moment.date()
        self.seconds["sweep"] = self.seconds.get("sweep", 0.0) + time.perf_counter() - began

    def _analyse(self) -> None:
        """Refresh the planner's statistics of the tables the simulation fills. It runs in one
        transaction (a test's, or a caller's), which autovacuum cannot see into: on statistics that
        still say "empty", the windows sweep's UPDATE was planned as a nested loop over every
        occurrence and took longer each simulated day (over an hour for 400 participants)."""
        tables = [model._meta.db_table for model in ANALYSED_MODELS]
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(connection.ops.quote_name(t) for t in tables))

    # -- steps

    def _eligible(self) -> dict[str, bool]:
        return {c.code: c.kind == "inclusion" for c in self.trial.eligibility.filter(active=True)}

    def _exclude(self, moment: dt.datetime, site: Any) -> None:
        answers = self._eligible()
        declines = self.rng.random() < 0.3
        if not declines:
            code = self.rng.choice(sorted(answers))
            answers[code] = not answers[code]
        referral = self.trial.referral_factor.levels.order_by("code").first() if self.trial.referral_factor else None
        screening = journey.screening_record(
            site=site, answers=answers, by=self.coordinator, referral=referral.code if referral else ""
        )
        self.screened += 1
        if declines:
            reason = self.rng.choice(
                ("Could not commit to six sessions", "Not interested after hearing the details", "Moving away")
            )
            journey.screening_decline(screening=screening, reason=reason, by=self.coordinator)

    def _enrol(self, moment: dt.datetime, subject: Subject) -> None:
        site = subject.site
        screening = journey.screening_record(site=site, answers=self._eligible(), by=self.coordinator, referral=subject.referral)
        self.screened += 1
        participant = journey.participant_enrol(
            screening=screening,
            consent=journey.ConsentInput(method="in_person", signed_name=f"Simulated Person {subject.index + 1}"),
            strata={"prior_episodes_gt2": subject.prior} if self.trial.strata.filter(code="prior_episodes_gt2").exists() else {},
            contact=journey.ContactInput(
                email=f"sim-{subject.index + 1:05d}@example.org",
                mobile=f"+614{subject.index + 1:08d}",
                timezone=site.timezone,
            ),
            by=self.coordinator,
        )
        self._baseline(participant, subject, moment)
        try:
            allocation = journey.participant_randomise(participant_id=participant.pk, by=self.coordinator)
        except journey.ListExhausted:
            trial_services.randomisation_list_generate(trial=self.trial, seed=self._list_seed(), per_stratum=50, by=SIMULATED_BY)
            allocation = journey.participant_randomise(participant_id=participant.pk, by=self.coordinator)
        participant.refresh_from_db()
        subject.participant = participant
        subject.arm = allocation.arm.code if allocation.arm_id else ""
        self._plan_followup(subject)

    def _baseline(self, participant: Participant, subject: Subject, moment: dt.datetime) -> None:
        """Answer any open baseline questionnaire (entered by staff at enrolment) before randomising."""
        for occurrence in Occurrence.objects.filter(
            participant=participant, instrument="baseline", status__in=(OccurrenceStatus.SCHEDULED, OccurrenceStatus.OPEN)
        ):
            definition = followup.instrument_for(occurrence=occurrence).definition
            raw = answers_generate(
                definition,
                subject.rng,
                today=moment.astimezone(zoneinfo.ZoneInfo(subject.site.timezone)).date(),
                context={"prior_gt2": subject.prior == "yes", "age": subject.age},
            )
            followup.response_submit(occurrence=occurrence, raw=raw, source=ResponseSource.STAFF, by=self.coordinator, now=moment)
            self.counts["responses"] += 1

    def _plan_followup(self, subject: Subject) -> None:
        """The truth of one randomised participant, and the steps it leads to."""
        participant, config, rng = subject.participant, self.config, subject.rng
        assert participant is not None and participant.randomised_at is not None
        zone = zoneinfo.ZoneInfo(subject.site.timezone)
        subject.randomised_on = participant.randomised_at.astimezone(zone).date()
        occurrences = list(Occurrence.objects.filter(participant=participant).order_by("opens_at", "instrument"))
        monthly_due = [o.due_date for o in occurrences if o.instrument == "monthly"]
        planned_end = min(add_months(subject.randomised_on, self.trial.max_followup_months), self.trial.followup_end)
        subject.followup_ends_on = max(monthly_due) if monthly_due else planned_end
        subject.followup_days = (subject.followup_ends_on - subject.randomised_on).days
        walking = subject.arm == self.walking_arm
        subject.limiting_day = weibull_day(
            u=subject.u_limiting,
            median_days=config.control_median_days,
            shape=config.weibull_shape,
            hazard_ratio=config.hazard_ratio if walking else 1.0,
        )
        subject.episodes = episodes_simulate(
            random.Random(subject.mild_seed),
            limiting_day=subject.limiting_day,
            horizon_days=subject.followup_days + 45,
            mild_per_year=config.mild_episodes_per_year,
            later_per_year=config.later_episodes_per_year,
            **self.thresholds,
        )
        if subject.dropout_day is not None and subject.dropout_day > subject.followup_days:
            subject.dropout_day = None
        active_until = min(
            subject.followup_days, subject.dropout_day if subject.dropout_day is not None else subject.followup_days
        )
        if subject.withdraws and subject.followup_days > 30:
            subject.withdrawal_day = max(1, int(subject.withdrawal_fraction * active_until))
            scopes = ["followup", "followup", "followup", "consent"] + (["intervention"] * 2 if walking else [])
            subject.withdrawal_scope = rng.choice(scopes)
            when = local_midnight(subject.randomised_on + dt.timedelta(days=subject.withdrawal_day), zone.key)
            self._at(when + dt.timedelta(hours=11), "withdraw", subject)
            if subject.withdrawal_scope != "intervention":
                active_until = min(active_until, subject.withdrawal_day)
        subject.adverse = [
            _adverse(rng, day, walking=walking)
            for day in _poisson_days(rng, per_year=config.adverse_event_rate, start=0, end=max(active_until, 0))
        ]
        for index, occurrence in enumerate(occurrences):
            if occurrence.instrument == "baseline" or rng.random() < config.missed_rate:
                continue
            window = occurrence.closes_at - occurrence.opens_at
            later = [o.opens_at for o in occurrences[index + 1 :] if o.instrument == occurrence.instrument]
            if rng.random() < config.staff_entry_share:  # a phone call near or after the window's end
                at = occurrence.closes_at + dt.timedelta(days=rng.randint(-5, 6), hours=rng.uniform(9, 16))
                if later:
                    at = min(at, later[0] - dt.timedelta(hours=12))
                source = ResponseSource.STAFF
            else:
                days = min(int(rng.expovariate(1 / 4)), max(window.days - 1, 0))
                at = occurrence.opens_at + dt.timedelta(days=days, hours=rng.uniform(7, 22))
                source = ResponseSource.PARTICIPANT
            self._at(max(at, participant.randomised_at + dt.timedelta(minutes=5)), "answer", (subject, occurrence.pk, source))
        if walking:
            for session in Session.objects.filter(participant=participant).order_by("number"):
                book_at = local_midnight(session.window_start - dt.timedelta(days=7), zone.key) + dt.timedelta(hours=10)
                self._at(max(book_at, participant.randomised_at + dt.timedelta(minutes=30)), "book", (subject, session.pk))

    def _answer(self, moment: dt.datetime, payload: tuple[Subject, int, str]) -> None:
        subject, occurrence_id, source = payload
        if subject.withdrawn_followup or subject.lost_by(moment):
            return
        occurrence = Occurrence.objects.select_related("participant__site__trial").get(pk=occurrence_id)
        if occurrence.status == OccurrenceStatus.CANCELLED:
            return
        assert subject.randomised_on is not None
        answered_on = moment.astimezone(zoneinfo.ZoneInfo(subject.site.timezone)).date()
        day = (answered_on - subject.randomised_on).days
        if occurrence.instrument == "monthly":
            since = [e for e in subject.episodes if subject.reported_until <= e.day < day]
            reported = since[:EPISODES_MAX]
            for episode in reported:
                episode.reported_month = occurrence.month
            subject.reported_until = max(subject.reported_until, day)
            raw = episodes_answers(reported, randomised_on=subject.randomised_on, answered_on=answered_on)
            problems = [a for a in subject.adverse if a.reported_month is None and a.day < day]
            raw["new_health_problem"] = "yes" if problems else "no"
            if problems:
                raw["new_health_problem_details"] = "; ".join(_adverse_text(a) for a in problems)
                for problem in problems:
                    problem.reported_month = occurrence.month
        else:
            definition = followup.instrument_for(occurrence=occurrence).definition
            raw = answers_generate(
                definition, subject.rng, today=answered_on, context={"prior_gt2": subject.prior == "yes", "age": subject.age}
            )
            problems = []
        by = self.coordinator if source == ResponseSource.STAFF else None
        try:
            submitted = followup.response_submit(occurrence=occurrence, raw=raw, source=source, by=by, now=moment)
        except followup.QuestionnaireClosed:
            return
        self.counts["responses"] += 1
        if problems:
            self._at(
                moment + dt.timedelta(days=subject.rng.randint(1, 4), hours=1),
                "review",
                (subject, submitted.response.pk, problems),
            )

    def _review(self, moment: dt.datetime, payload: tuple[Subject, int, list[AdverseTruth]]) -> None:
        """Staff review the "new health problem" report: the first problem completes it, any
        others are recorded as events of their own."""
        subject, response_id, problems = payload
        assert subject.participant is not None and subject.randomised_on is not None
        pending = AdverseEvent.objects.filter(response_id=response_id, status=AEStatus.PENDING).first()
        today = moment.astimezone(zoneinfo.ZoneInfo(subject.site.timezone)).date()
        for number, problem in enumerate(problems):
            onset = subject.randomised_on + dt.timedelta(days=problem.day)
            resolved = onset + dt.timedelta(days=problem.duration_days)
            data = safety.AEInput(
                onset_date=onset,
                description=_adverse_text(problem),
                category=problem.category,
                severity=problem.severity,
                serious=problem.serious,
                serious_criteria=["hospitalisation"] if problem.serious else [],
                relatedness="possibly" if problem.category == "lower_extremity" else "unlikely",
                expected=problem.category == "lower_extremity",
                action_taken="None",
                outcome="recovered" if resolved <= today else "recovering",
                resolution_date=resolved if resolved <= today else None,
            )
            if number == 0 and pending is not None:
                safety.adverse_event_update(
                    event=pending, data=data, reason="Reviewed the questionnaire report", by=self.coordinator
                )
            else:
                safety.adverse_event_record(participant=subject.participant, data=data, by=self.coordinator, now=moment)
            self.counts["adverse_events"] += 1

    def _book(self, moment: dt.datetime, payload: tuple[Subject, int]) -> None:
        subject, session_id = payload
        if subject.withdrawn_intervention or subject.withdrawn_followup:
            return
        session = Session.objects.select_related("physiotherapist").get(pk=session_id)
        physio = session.physiotherapist
        if physio is None or session.status != "planned":
            return
        modes = set(session.allowed_modes or ())

        def free(date_from: dt.date, date_to: dt.date) -> list[Any]:
            slots = physiotherapist_slots(
                physiotherapist=physio, trial=self.trial, date_from=date_from, date_to=date_to, now=moment
            )
            # A slot starting this very moment is offered by the selector but refused by booking ("passed").
            return [s for s in slots if s.starts_at > moment and (not modes or modes & set(s.modes))]

        # The window first (the common case, and a short search); three weeks after it otherwise.
        slots, reason = free(session.window_start, session.window_end), ""
        if not slots:
            slots, reason = (
                free(session.window_end, session.window_end + dt.timedelta(days=21)),
                "Simulated: no free slot in the window",
            )
        if not slots:
            return
        slot = subject.rng.choice(slots[:6])
        mode = subject.rng.choice(sorted(modes & set(slot.modes) if modes else slot.modes))
        try:
            booked = intervention.session_book(
                session_id=session.pk, starts_at=slot.starts_at, mode=mode, by=self.coordinator, now=moment, reason=reason
            ).session
        except Conflict:
            return
        assert booked.ends_at is not None
        self._at(booked.ends_at + dt.timedelta(minutes=10), "record", (subject, session.pk))

    def _record(self, moment: dt.datetime, payload: tuple[Subject, int]) -> None:
        subject, session_id = payload
        session = Session.objects.get(pk=session_id)
        if session.status != "booked":
            return  # cancelled by a withdrawal meanwhile
        rng = subject.rng
        draw = rng.random()
        if subject.lost_by(moment):
            attendance = Attendance.NO_SHOW
        else:
            attendance = Attendance.ATTENDED if draw < 0.88 else Attendance.NO_SHOW if draw < 0.96 else Attendance.CANCELLED_LATE
        attended = attendance == Attendance.ATTENDED
        policy = intervention_policy(trial=self.trial)
        topics = [code for code, _label in (policy.topics if policy else [])]
        prescription = (
            intervention.PrescriptionInput(
                min(3 + session.number // 2, 5), min(10 + 5 * session.number, 30), "Add 5 minutes a fortnight"
            )
            if attended and session.sets_prescription
            else None
        )
        intervention.session_record(
            session_id=session.pk,
            attendance=attendance,
            by=self.physios.get(subject.site.pk, session.physiotherapist),
            duration_minutes=rng.randint(30, 60) if attended else None,
            topics=rng.sample(topics, min(len(topics), rng.randint(1, 3))) if attended else [],
            prescription=prescription,
            now=moment,
        )
        self.counts["sessions"] += attended

    def _withdraw(self, moment: dt.datetime, subject: Subject) -> None:
        assert subject.participant is not None
        journey.participant_withdraw(
            participant=subject.participant,
            scope=subject.withdrawal_scope,
            reason={
                "intervention": "No time for the sessions",
                "followup": "No longer wishes to answer questionnaires",
                "consent": "Withdrew consent",
            }[subject.withdrawal_scope],
            by=self.coordinator,
        )
        subject.withdrawn_intervention = True
        subject.withdrawn_followup = subject.withdrawal_scope != "intervention"
        self.counts["withdrawals"] += 1


def _months_between(start: dt.date, end: dt.date) -> int:
    delta = relativedelta(end, start)
    return delta.years * 12 + delta.months


_WALKING_CATEGORIES = (("lower_extremity", 45), ("back", 15), ("other_msk", 15), ("cardiovascular", 5), ("other", 20))
_CONTROL_CATEGORIES = (("lower_extremity", 25), ("back", 20), ("other_msk", 20), ("cardiovascular", 5), ("other", 30))
_DESCRIPTIONS = {
    "lower_extremity": "Sore knee after walking",
    "back": "Stiff upper back",
    "other_msk": "Sore shoulder",
    "cardiovascular": "Palpitations",
    "other": "Headache",
}


def _adverse(rng: random.Random, day: int, *, walking: bool) -> AdverseTruth:
    categories = _WALKING_CATEGORIES if walking else _CONTROL_CATEGORIES
    category = rng.choices([c for c, _w in categories], weights=[w for _c, w in categories])[0]
    severity = rng.choices(("mild", "moderate", "severe"), weights=(70, 25, 5))[0]
    return AdverseTruth(
        day=day, category=category, severity=severity, serious=rng.random() < 0.03, duration_days=rng.randint(2, 30)
    )


def _adverse_text(problem: AdverseTruth) -> str:
    return f"{_DESCRIPTIONS[problem.category]} (day {problem.day})"


# --- The truth files -----------------------------------------------------------------------------

TRUTH_COLUMNS = (
    "study_id",
    "site",
    "arm",
    "randomised_on",
    "followup_ends_on",
    "limiting_day",
    "any_day",
    "limiting_reported",
    "dropout_day",
    "withdrawal_scope",
    "withdrawal_day",
    "adverse_events",
)
EPISODE_COLUMNS = (
    "study_id",
    "episode",
    "start_day",
    "duration_days",
    "lasted_24h",
    "interference",
    "pain_avg",
    "pain_worst",
    "care_sought",
    "activity_limiting",
    "reported_month",
)


def episodes_path_for(truth_path: Path) -> Path:
    return truth_path.with_name(f"{truth_path.stem}_episodes{truth_path.suffix or '.csv'}")


def _truth_write(subjects: list[Subject], truth_path: Path) -> tuple[Path, Path]:
    """``limiting_day`` and ``any_day`` are the true days from randomisation (the first
    activity-limiting episode may come after follow-up ends: then it was never observable)."""
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    episodes_path = episodes_path_for(truth_path)
    randomised = [s for s in subjects if s.participant is not None]
    with truth_path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for s in randomised:
            assert s.participant is not None
            first_limiting = next((e for e in s.episodes if e.activity_limiting), None)
            any_day = next((e.day for e in s.episodes if e.lasted_24h), "")
            writer.writerow(
                (
                    s.participant.study_id,
                    s.site.code,
                    s.arm,
                    s.randomised_on,
                    s.followup_ends_on,
                    s.limiting_day,
                    any_day,
                    int(first_limiting is not None and first_limiting.reported_month is not None),
                    "" if s.dropout_day is None else s.dropout_day,
                    s.withdrawal_scope,
                    "" if s.withdrawal_day is None else s.withdrawal_day,
                    len(s.adverse),
                )
            )
    with episodes_path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(EPISODE_COLUMNS)
        for s in randomised:
            assert s.participant is not None
            for number, e in enumerate(s.episodes, start=1):
                writer.writerow(
                    (
                        s.participant.study_id,
                        number,
                        e.day,
                        e.duration_days,
                        int(e.lasted_24h),
                        e.interference,
                        e.pain_avg,
                        e.pain_worst,
                        int(e.care_sought),
                        int(e.activity_limiting),
                        "" if e.reported_month is None else e.reported_month,
                    )
                )
    return truth_path, episodes_path
