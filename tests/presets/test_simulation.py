"""simulate_trial: a whole trial through the real services, with a known truth."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import math
import random
import statistics
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from closeout.datalock.services import database_lock
from closeout.releases import services as release_services
from followup import outcomes
from followup.instruments import clean_answers
from followup.models import Outcome, QuestionnaireResponse
from intervention.models import Session
from participants.models import Participant
from presets.instrument_library import BASELINE, EPISODES_MAX, MONTHLY_EPISODES, TIMEPOINT
from presets.simulation import (
    SimulationConfig,
    SimulationRefused,
    answers_generate,
    episodes_answers,
    episodes_path_for,
    episodes_simulate,
    trial_simulate,
    weibull_day,
)
from trial.models import Allocation, Trial

TODAY = dt.date(2026, 3, 2)


def small(**overrides: Any) -> SimulationConfig:
    values: dict[str, Any] = {
        "participants": 20,
        "hazard_ratio": 0.72,
        "control_median_days": 112,
        "seed": 7,
        "recruitment_months": 1,
        "followup_after_months": 5,
        "withdrawal_rate": 0.15,
    }
    return SimulationConfig(**{**values, **overrides})


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


# --- The truth, without a database ---------------------------------------------------------------


def test_weibull_days_have_the_median_asked_for_and_the_hazard_ratio_shrinks_them() -> None:
    rng = random.Random(1)
    draws = [1.0 - rng.random() for _ in range(20001)]
    control = [weibull_day(u=u, median_days=112, shape=1.3, hazard_ratio=1.0) for u in draws]
    walking = [weibull_day(u=u, median_days=112, shape=1.3, hazard_ratio=0.72) for u in draws]
    assert abs(statistics.median(control) - 112) <= 3
    # S_walking(t) = S_control(t) ** 0.72, so the walking median is where S_control = 0.5 ** (1 / 0.72).
    expected = 112 * (math.log(2) / 0.72 / math.log(2)) ** (1 / 1.3)
    assert abs(statistics.median(walking) - expected) <= 4
    assert all(w >= c for w, c in zip(walking, control, strict=True))


def test_simulated_episodes_read_back_through_the_outcome_rules_as_simulated() -> None:
    """Mild episodes (short, or too little interference or pain) are never activity-limiting, the
    first limiting one is where it was drawn, and episodes never overlap."""
    rules = outcomes.Rules()
    randomised_on = dt.date(2025, 1, 10)
    two_in_a_month = 0
    for seed in range(200):
        rng = random.Random(seed)
        limiting_day = rng.randint(0, 400)
        episodes = episodes_simulate(rng, limiting_day=limiting_day, horizon_days=500, mild_per_year=4, later_per_year=2)
        assert [e.day for e in episodes if e.activity_limiting][:1] == ([limiting_day] if limiting_day < 500 else [])
        for before, after in itertools.pairwise(episodes):
            assert after.day > before.end
        for start in range(0, 500, 30):
            reported = [e for e in episodes if start <= e.day < start + 30][:EPISODES_MAX]
            two_in_a_month += len(reported) >= 2
            answered_on = randomised_on + dt.timedelta(days=start + 30)
            raw = episodes_answers(reported, randomised_on=randomised_on, answered_on=answered_on)
            answers, errors = clean_answers(definition=MONTHLY_EPISODES, raw={**raw, "new_health_problem": "no"})
            assert errors == {}
            read_back = outcomes.episodes(answers)
            assert [outcomes.is_activity_limiting(e, rules) for e in read_back] == [e.activity_limiting for e in reported]
            assert [outcomes.is_recurrence(e) for e in read_back] == [e.lasted_24h for e in reported]
            assert [e.start for e in read_back] == [randomised_on + dt.timedelta(days=e.day) for e in reported]
    assert two_in_a_month > 0


@pytest.mark.parametrize("definition", [BASELINE, TIMEPOINT], ids=lambda d: d["code"])
def test_generated_answers_are_valid_for_the_questionnaire(definition: dict[str, Any]) -> None:
    for seed in range(20):
        raw = answers_generate(
            definition, random.Random(seed), today=TODAY, context={"prior_gt2": seed % 2 == 0, "age": 30 + seed}
        )
        answers, errors = clean_answers(definition=definition, raw=raw)
        assert errors == {}
        if "date_of_birth" in answers:
            age = (TODAY - dt.date.fromisoformat(answers["date_of_birth"])).days / 365.25
            assert 30 + seed <= age < 31 + seed + 1
            assert (answers["lbp_previous_episodes"] > 2) == (seed % 2 == 0)


def test_settings_out_of_range_are_refused_with_a_clear_message() -> None:
    with pytest.raises(SimulationRefused, match=r"--hazard-ratio must be above 0.*--missed-rate"):
        small(hazard_ratio=0, missed_rate=1.5).check()


# --- A small trial through the real services ------------------------------------------------------


def _stored(trial: Trial) -> dict[str, Any]:
    return {
        "allocations": sorted(
            Allocation.objects.filter(participant__site__trial=trial).values_list("participant__study_id", "arm__code")
        ),
        "answers": sorted(
            (r.occurrence.participant.study_id, r.occurrence.instrument, r.occurrence.month, r.source, str(r.answers))
            for r in QuestionnaireResponse.objects.filter(occurrence__participant__site__trial=trial).select_related(
                "occurrence__participant"
            )
        ),
    }


def test_a_small_trial_is_simulated_through_the_services_and_reproducible(walkback: Trial, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    with transaction.atomic():
        result = trial_simulate(trial=walkback, config=small(), truth_path=first, today=TODAY)
        stored = _stored(walkback)
        walking = set(Allocation.objects.filter(arm__code="walking").values_list("participant_id", flat=True))
        sessions = Session.objects.filter(participant__site__trial=walkback)
        assert result.participants == 20 and sum(result.randomised.values()) == 20
        assert result.screened > 20  # some people screened were excluded or declined
        assert {"walking", "control"} == set(result.randomised)
        assert set(sessions.values_list("participant_id", flat=True)) == walking
        assert sessions.filter(status="attended").exists()
        assert (
            result.responses == QuestionnaireResponse.objects.filter(occurrence__participant__site__trial=walkback).count() > 50
        )
        assert QuestionnaireResponse.objects.filter(source="staff").exists()
        assert QuestionnaireResponse.objects.filter(instrument_version__version="2", occurrence__instrument="monthly").exists()
        assert not QuestionnaireResponse.objects.filter(
            instrument_version__version="1", occurrence__instrument="monthly"
        ).exists()
        assert Outcome.objects.filter(participant__site__trial=walkback, code="activity_limiting").exists()
        walkback.refresh_from_db()
        assert walkback.followup_end == TODAY - dt.timedelta(days=60)
        truth = read(first)
        assert [row["study_id"] for row in truth] == sorted(
            Participant.objects.filter(site__trial=walkback).values_list("study_id", flat=True),
            key=[row["study_id"] for row in truth].index,
        )
        assert {row["arm"] for row in truth} == {"walking", "control"}
        assert any(row["withdrawal_scope"] for row in truth)
        episodes = read(episodes_path_for(first))
        assert {"0", "1"} <= {row["activity_limiting"] for row in episodes}
        with pytest.raises(SimulationRefused, match="already has randomised participants"):
            trial_simulate(trial=walkback, config=small(), truth_path=tmp_path / "again.csv", today=TODAY)
        transaction.set_rollback(True)

    second = tmp_path / "second.csv"
    trial_simulate(trial=walkback, config=small(), truth_path=second, today=TODAY)
    assert second.read_text() == first.read_text()
    assert episodes_path_for(second).read_text() == episodes_path_for(first).read_text()
    assert _stored(walkback) == stored


def test_the_command_prints_what_it_simulated_and_its_time(walkback: Trial, tmp_path: Path, capsys: Any) -> None:
    required = ("simulate_trial", "--participants=4", "--hazard-ratio=0.7", "--control-median-days=100", "--seed=3")
    call_command(*required, f"--truth-file={tmp_path / 'truth.csv'}", "--recruitment-months=1", "--followup-after-months=2")
    out = capsys.readouterr().out
    assert "Simulated 4 participants" in out and "Time by step:" in out
    assert len(read(tmp_path / "truth.csv")) == 4
    with pytest.raises(CommandError, match="already has randomised participants"):
        call_command(*required, f"--truth-file={tmp_path / 'again.csv'}")


# --- The hazard ratio comes back --------------------------------------------------------------------


@pytest.mark.simulation
def test_the_stored_outcomes_recover_the_simulated_hazard_ratio(
    walkback: Trial, tmp_path: Path, settings: Any, investigator: Any, password: str, make_staff: Any
) -> None:
    """320 participants, HR 0.72, recruited over 2 months and followed for 6 to 8: a Cox model
    on the stored primary outcomes contains 0.72 in its 95% CI, and every reported first
    activity-limiting episode is the stored event, to the day."""
    from lifelines import CoxPHFitter
    from pandas import DataFrame

    config = SimulationConfig(
        participants=320,
        hazard_ratio=0.72,
        control_median_days=112,
        seed=20260302,
        recruitment_months=2,
        followup_after_months=6,
    )
    result = trial_simulate(trial=walkback, config=config, truth_path=tmp_path / "truth.csv", today=TODAY)
    truth = {row["study_id"]: row for row in read(result.truth_path)}
    arms = dict(Allocation.objects.filter(participant__site__trial=walkback).values_list("participant__study_id", "arm__code"))
    stored = {
        o.participant.study_id: o
        for o in Outcome.objects.filter(participant__site__trial=walkback, code="activity_limiting").select_related("participant")
    }
    assert set(stored) == set(arms)  # every randomised participant has outcomes, from day 0
    rows = [
        {"days": stored[study_id].days, "event": int(stored[study_id].event), "walking": int(arm == "walking")}
        for study_id, arm in arms.items()
    ]
    data = DataFrame(rows)
    cox = CoxPHFitter().fit(data, duration_col="days", event_col="event")
    hazard_ratio = float(cox.hazard_ratios_["walking"])
    low, high = (math.exp(v) for v in cox.confidence_intervals_.loc["walking"])
    print(f"simulated {result.participants} in {result.seconds:.0f} s: HR {hazard_ratio:.3f} ({low:.3f}-{high:.3f})")
    assert low < 0.72 < high
    assert int(data["event"].sum()) > 150

    checked = 0
    for study_id, row in truth.items():
        if row["limiting_reported"] != "1" or dt.date.fromisoformat(row["randomised_on"]) + dt.timedelta(
            days=int(row["limiting_day"])
        ) > dt.date.fromisoformat(row["followup_ends_on"]):
            continue
        outcome = stored[study_id]
        assert outcome.event, study_id
        assert outcome.days == int(row["limiting_day"]), study_id
        checked += 1
    assert checked > 150

    # The CONSORT flow of the simulated trial adds up, pooled and by arm, and a blinded role gets
    # the same pooled numbers with no arms.
    from console.reports import consort_counts

    codes = list(walkback.sites.values_list("code", flat=True))
    flow = consort_counts(trial=walkback, user=make_staff("coordinator", sites=codes, username="sim-consort"))
    assert flow.randomised == len(arms) and flow.assessed == flow.excluded_total + flow.randomised
    assert flow.excluded_total == sum(flow.excluded.values()) > 0
    assert flow.withdrawn == sum(flow.withdrawn_by_reason.values()) > 0
    assert flow.analysed + flow.excluded_from_analysis == flow.randomised
    assert flow.arms is not None and len(flow.arms) == 2
    for name in ("allocated", "withdrawn", "lost_to_follow_up", "analysed", "excluded_from_analysis"):
        assert sum(getattr(arm, name) for arm in flow.arms) == getattr(flow, name if name != "allocated" else "randomised"), name
    for arm in flow.arms:
        assert arm.analysed + arm.excluded_from_analysis == arm.allocated
        assert arm.received_intervention == 0 if arm.code == "control" else arm.received_intervention > 0
    pooled = consort_counts(trial=walkback, user=make_staff("statistician", username="sim-consort-stat"))
    assert pooled.arms is None and (pooled.assessed, pooled.randomised, pooled.analysed) == (
        flow.assessed,
        flow.randomised,
        flow.analysed,
    )
    print(
        f"CONSORT: assessed {flow.assessed}, excluded {flow.excluded}, randomised {flow.randomised}, "
        f"withdrawn {flow.withdrawn}, lost {flow.lost_to_follow_up}, analysed {flow.analysed}"
    )

    # The locked release: every randomised participant once, with a time and an event, never
    # past their own end of follow-up, a complete baseline, and the same hazard ratio from
    # analysis.csv alone (frictionless validates the package: tests/conftest.py).
    settings.VAR_DIR = tmp_path
    database_lock(trial=walkback, user=investigator, password=password, open_items_note="Simulated trial")
    statistician = make_staff("statistician")
    release = release_services.release_create(trial=walkback, variant="unblinded", by=statistician)
    release = release_services.release_build(release_id=release.pk)
    assert release is not None and release.status == "ready", release and release.error
    with zipfile.ZipFile(tmp_path / "releases" / release.zip_name) as archive:
        files = {info.filename.split("/", 1)[1]: archive.read(info) for info in archive.infolist()}
    analysis = list(csv.DictReader(io.StringIO(files["analysis.csv"].decode())))
    baseline = list(csv.DictReader(io.StringIO(files["baseline.csv"].decode())))
    assert {row["study_id"] for row in analysis} == set(arms) and len(analysis) == len(arms)
    for row in analysis:
        for name in ("activity_limiting", "any", "care_seeking"):
            assert row[f"{name}_days"] != "" and row[f"{name}_event"] in ("0", "1"), (row["study_id"], name)
            assert int(row[f"{name}_days"]) <= int(row["planned_followup_days"]), (row["study_id"], name)
        assert row["itt"] == "1" and row["age_years"] != "" and row["bmi"] != ""
    assert len(baseline) == len(arms) and all(row["rmdq_total"] != "" for row in baseline)
    print(
        f"release: {len(analysis)} of {len(arms)} randomised with a time and an event, 0 censored past their end of "
        f"follow-up, {checked} event dates equal to the simulated episode, baseline complete for {len(baseline)}"
    )
    frame = DataFrame(
        {
            "days": [int(r["activity_limiting_days"]) for r in analysis],
            "event": [int(r["activity_limiting_event"]) for r in analysis],
            "walking": [int(r["arm"] == "walking") for r in analysis],
        }
    )
    released = float(CoxPHFitter().fit(frame, duration_col="days", event_col="event").hazard_ratios_["walking"])
    print(f"from analysis.csv: HR {released:.3f}; {len(analysis)} rows, {sum(frame['event'])} events")
    assert abs(released - hazard_ratio) < 0.01

    # The release's own analysis (analysis/results.json) gives the hazard ratio an outside fit of
    # analysis.csv gives, and its confidence interval holds the simulated truth.
    results = json.loads(files["analysis/results.json"])
    primary = results["outcomes"]["activity_limiting"]
    print(f"results.json: HR {primary['hazard_ratio']} {primary['ci']}, stratified {primary['stratified_hazard_ratio']}")
    assert primary["primary"] and results["arm"]["intervention"] == "walking"
    assert abs(primary["hazard_ratio"] - released) < 0.01
    assert primary["ci"][0] < config.hazard_ratio < primary["ci"][1]
    assert primary["stratified_hazard_ratio"] is not None and primary["arms"]["walking"]["n"] + primary["arms"]["control"][
        "n"
    ] == len(analysis)
