"""The cost-effectiveness analysis of a release (closeout.releases.analyse.economic): utilities,
QALYs and costs a reader can check by hand, a bootstrap that gives the same interval every time,
pooled results only when blinded, and the plan built from the trial's economic policy."""

# ruff: noqa: F811  (the release fixtures are imported from test_releases)
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from closeout.models import EconomicPolicy, value_set_errors
from closeout.releases import analyse, catalogue, sap
from presets.value_sets import AUSTRALIA_2023, ENGLAND_2018
from tests.closeout.test_analysis import synthetic_plan, synthetic_release
from tests.closeout.test_releases import _fast_passwords, built, datamanager, dataset, locked, releases_dir  # noqa: F401
from trial.models import Trial

UNIT_COSTS = {"care": {"gp": 40.0, "physiotherapist": 90.0, "emergency": 600.0}, "work_day": 300.0, "session": 50.0}


def economic_spec(*, months: tuple[int, ...] = (6, 12), answered: tuple[int, ...] = (1, 2, 3), **changes: Any) -> dict[str, Any]:
    spec = {
        "eq5d_value_set": ENGLAND_2018,
        "unit_costs": UNIT_COSTS,
        "currency": "GBP",
        "price_year": 2023,
        "discount_rate": 0.035,
        "horizon_months": 12,
        "wtp_threshold": 20000.0,
        "bootstrap": {"resamples": 200, "seed": 7},
        "utility": {
            "baseline": {"file": "baseline.csv", "column": "eq5d_profile"},
            "timepoints": [{"month": m, "column": f"eq5d_profile_m{m:02d}"} for m in months],
        },
        "care": {
            "file": "episodes.csv",
            "month": "month",
            "care_sought": "care_sought",
            "care_from": "care_from",
            "work_days": "work_days_missed",
            "separator": ";",
            "answered": [{"month": m, "column": f"monthly_day_m{m:02d}"} for m in answered],
        },
        "sessions": {"file": "sessions.csv", "status": "status", "counted": ["attended"], "day": "session_day"},
    }
    spec.update(changes)
    return spec


def small_release(folder: Path) -> Path:
    """Four participants whose utilities, QALYs and costs can be worked out by hand (see the test)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = ["P1", "P2", "P3", "P4"]
    pd.DataFrame({"study_id": ids, "arm": ["walking", "control", "control", "walking"], "itt": 1}).to_csv(
        folder / "analysis.csv", index=False
    )
    pd.DataFrame({"study_id": ids, "eq5d_profile": ["11111", "11121", "11111", "11111"]}).to_csv(
        folder / "baseline.csv", index=False
    )
    pd.DataFrame(
        {
            "study_id": ids,
            "eq5d_profile_m06": ["21111", "55555", "11111", "11111"],
            "eq5d_profile_m12": ["11111", "11111", "11111", ""],  # P4: no utility at 12 months
            "monthly_day_m01": [30, 31, 30, 30],
            "monthly_day_m02": [60, 61, "", 60],  # P3: missed month 2, so its care is not known
            "monthly_day_m03": [90, 91, 90, 90],
        }
    ).to_csv(folder / "questionnaire_scores.csv", index=False)
    pd.DataFrame(
        {
            "study_id": ["P1", "P2", "P2", "P3"],
            "month": [2, 3, 13, 1],
            "episode": [1, 1, 1, 1],
            "care_sought": [1, 1, 1, 0],
            "care_from": ["gp;physiotherapist", "emergency;shaman", "gp", ""],
            "work_days_missed": [2, 0, 5, 1],
        }
    ).to_csv(folder / "episodes.csv", index=False)
    pd.DataFrame(
        {
            "study_id": ["P1", "P1", "P1", "P4"],
            "session": [1, 2, 3, 1],
            "status": ["attended", "attended", "no_show", "attended"],
            "session_day": [7, 30, 60, 7],
        }
    ).to_csv(folder / "sessions.csv", index=False)
    pd.DataFrame(columns=["ae_number", "study_id", "status", "category", "serious"]).to_csv(
        folder / "adverse_events.csv", index=False
    )
    return folder


def test_utilities_follow_the_published_value_sets() -> None:
    assert analyse.eq5d_utility("11111", ENGLAND_2018) == 1.0
    assert analyse.eq5d_utility("55555", ENGLAND_2018) == pytest.approx(-0.285)  # England's worst state
    assert analyse.eq5d_utility("12345", ENGLAND_2018) == pytest.approx(1 - 0.050 - 0.063 - 0.276 - 0.289)
    assert analyse.eq5d_utility("55555", AUSTRALIA_2023) == pytest.approx(-0.301)  # with N5 (any level 5): 0.153
    assert analyse.eq5d_utility("11115", AUSTRALIA_2023) == pytest.approx(1 - 0.238 - 0.153)
    for broken in ("", "1111", "11116", "111111", None, float("nan")):
        assert analyse.eq5d_utility(broken, ENGLAND_2018) is None
    assert value_set_errors(ENGLAND_2018) == [] and value_set_errors(AUSTRALIA_2023) == []
    assert value_set_errors({"name": "x", "source": "y", "decrements": [[0, 1, 2]]})


def test_a_small_release_gives_the_utilities_qalys_and_costs_worked_out_by_hand(tmp_path: Path) -> None:
    folder = small_release(tmp_path)
    analysis = analyse.table_read(folder, "analysis.csv")
    scores = analyse.table_read(folder, "questionnaire_scores.csv")
    arm = synthetic_plan()["arm"]
    frame = analyse.participant_economics(folder, analysis, scores, economic_spec(), arm).set_index("study_id")
    # P1: 11111 -> 1, 21111 -> 1 - 0.058 = 0.942, 11111 -> 1; two half-year trapezoids of 0.971.
    assert frame.loc["P1", ["utility_m00", "utility_m06", "utility_m12"]].tolist() == pytest.approx([1.0, 0.942, 1.0])
    assert frame.loc["P1", "qalys"] == pytest.approx(0.971)
    # P2: 11121 -> 0.937, 55555 -> -0.285, 11111 -> 1: (0.937 - 0.285)/4 + (-0.285 + 1)/4.
    assert frame.loc["P2", "qalys"] == pytest.approx(0.652 / 4 + 0.715 / 4)
    # P1: a GP and a physiotherapist (40 + 90), 2 days off work (600), 2 sessions attended (100).
    assert frame.loc["P1", ["cost_care", "cost_work", "cost_sessions", "cost_total"]].tolist() == [130, 600, 100, 830]
    # P2: the emergency department (600; the shaman has no unit cost); month 13 is after the horizon.
    assert frame.loc["P2", "cost_total"] == 600
    assert frame.attrs["uncosted"] == ["shaman"]
    # P3 missed a monthly questionnaire and P4 the 12-month EQ-5D: not complete cases.
    assert frame["complete"].tolist() == [True, True, False, False]
    assert np.isnan(frame.loc["P4", "qalys"])
    results = analyse.economic(folder, analysis, scores, {**synthetic_plan(), "economic": economic_spec()})
    assert results["groups"]["pooled"]["complete"] == 2 and results["groups"]["pooled"]["missing"] == 2
    assert results["groups"]["walking"]["costs"]["total"]["mean"] == 830
    six_months = results["groups"]["walking"]["utility"]["6"]  # everyone with a value: P1 0.942, P4 1
    assert (six_months["mean"], six_months["n"]) == (pytest.approx(0.971), 2)
    assert results["incremental"]["note"].startswith("not estimable")  # one complete case an arm


def test_discounting_applies_from_the_second_year(tmp_path: Path) -> None:
    folder = small_release(tmp_path)
    analysis = analyse.table_read(folder, "analysis.csv")
    scores = analyse.table_read(folder, "questionnaire_scores.csv")
    spec = economic_spec(horizon_months=24, discount_rate=0.05)
    frame = analyse.participant_economics(folder, analysis, scores, spec, synthetic_plan()["arm"]).set_index("study_id")
    # P2's GP visit reported at month 13 is now in, discounted once: 600 + 40 / 1.05.
    assert frame.loc["P2", "cost_care"] == pytest.approx(600 + 40 / 1.05)
    assert frame.loc["P2", "cost_work"] == pytest.approx(5 * 300 / 1.05)


def trial_release(folder: Path, *, n: int = 200, seed: int = 3) -> Path:
    """``n`` participants: walking gains about 0.03 QALYs and costs about 300 more."""
    synthetic_release(folder, n=n, seed=seed)
    rng = np.random.default_rng(seed)
    analysis = pd.read_csv(folder / "analysis.csv")
    walking = (analysis["arm"] == "walking").to_numpy()
    levels = ["11111", "21111", "21121", "22222", "32232"]

    def profiles(shift: int) -> list[str]:
        picks = np.clip(rng.integers(0, 5, len(analysis)) - (shift * walking), 0, 4)
        return [levels[i] for i in picks]

    ids = analysis["study_id"]
    pd.DataFrame({"study_id": ids, "eq5d_profile": profiles(0)}).to_csv(folder / "baseline.csv", index=False)
    scores = pd.read_csv(folder / "questionnaire_scores.csv")
    for month in (6, 12):
        scores[f"eq5d_profile_m{month:02d}"] = profiles(1)
    for month in (1, 2, 3):
        scores[f"monthly_day_m{month:02d}"] = 30 * month
    scores.to_csv(folder / "questionnaire_scores.csv", index=False)
    pd.DataFrame(
        {
            "study_id": ids,
            "month": 1,
            "care_sought": rng.integers(0, 2, len(ids)),
            "care_from": rng.choice(["gp", "physiotherapist", "gp;emergency"], len(ids)),
            "work_days_missed": rng.integers(0, 3, len(ids)),
        }
    ).to_csv(folder / "episodes.csv", index=False)
    pd.DataFrame({"study_id": ids[walking], "status": "attended", "session_day": 10}).to_csv(folder / "sessions.csv", index=False)
    return folder


def _economic(folder: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """The economic part of results.json, as stored (rounded)."""
    analysis, scores = analyse.table_read(folder, "analysis.csv"), analyse.table_read(folder, "questionnaire_scores.csv")
    return dict(json.loads(analyse.results_dump(analyse.economic(folder, analysis, scores, plan))))


def test_the_bootstrap_is_reproducible_and_the_icer_is_the_ratio_of_the_increments(tmp_path: Path) -> None:
    folder = trial_release(tmp_path)
    plan = {**synthetic_plan(), "economic": economic_spec()}
    first = _economic(folder, plan)
    assert _economic(folder, copy.deepcopy(plan)) == first
    change = first["incremental"]
    assert change["complete"] == {"walking": 100, "control": 100} and change["resamples"] == 200
    assert change["icer"]["estimate"] == pytest.approx(change["cost"]["estimate"] / change["qalys"]["estimate"], rel=1e-5)
    assert change["qalys"]["estimate"] > 0 and change["qalys"]["ci"][0] < change["qalys"]["estimate"] < change["qalys"]["ci"][1]
    assert change["cost"]["ci"][0] < change["cost"]["estimate"] < change["cost"]["ci"][1]
    assert 0 <= change["probability_cost_effective"] <= 1
    assert sum(change["quadrants"].values()) == pytest.approx(1)
    probabilities = [point["probability"] for point in change["acceptability"]]
    assert probabilities[2] == change["probability_cost_effective"]
    # The difference in QALYs is adjusted for baseline utility: the regression's coefficient.
    frame = analyse.participant_economics(
        folder,
        analyse.table_read(folder, "analysis.csv"),
        analyse.table_read(folder, "questionnaire_scores.csv"),
        plan["economic"],
        plan["arm"],
    )
    design = np.column_stack([np.ones(len(frame)), frame["arm"] == "walking", frame["utility_m00"]]).astype(float)
    coefficients = np.linalg.lstsq(design, frame["qalys"].to_numpy(float), rcond=None)[0]
    assert change["qalys"]["estimate"] == pytest.approx(coefficients[1], rel=1e-5)
    third = _economic(folder, {**plan, "economic": economic_spec(bootstrap={"resamples": 200, "seed": 8})})
    assert third["incremental"]["cost"]["ci"] != change["cost"]["ci"]
    assert third["incremental"]["cost"]["estimate"] == change["cost"]["estimate"]
    report = analyse.economic_html({"economic": first, "arm": plan["arm"]}, analyse._groups({"arm": plan["arm"]}))
    assert "Incremental analysis" in report and "ICER" in report and "GBP" in report and "Complete cases" in report


def test_a_blinded_plan_pools_qalys_and_costs_and_compares_nothing(tmp_path: Path) -> None:
    folder = trial_release(tmp_path, n=40)
    plan = {**synthetic_plan(blinded=True), "economic": economic_spec(sessions=None)}
    results = _economic(folder, plan)
    assert set(results["groups"]) == {"pooled"} and "incremental" not in results
    assert results["groups"]["pooled"]["costs"]["sessions"]["mean"] == 0 and not results["sessions_costed"]
    report = analyse.economic_html({"economic": results}, analyse._groups({}))
    assert "All participants" in report and '<th scope="col">Sessions</th>' not in report
    text = (json.dumps(results) + report).lower()
    for word in ("walking", "control", "icer", "incremental", "hazard"):
        assert word not in text, word


def test_not_configured_still_says_so(tmp_path: Path) -> None:
    folder = small_release(tmp_path)
    analysis, scores = analyse.table_read(folder, "analysis.csv"), analyse.table_read(folder, "questionnaire_scores.csv")
    assert analyse.economic(folder, analysis, scores, synthetic_plan()) == {
        "configured": False,
        "note": "Not configured: the trial has no EQ-5D-5L value set and no unit costs, so no QALYs, costs or ICER.",
    }


# --- The policy and the release ---------------------------------------------------------------------


def test_the_walkback_preset_sets_the_australian_value_set_and_admin_checks_a_pasted_one(walkback: Trial) -> None:
    policy = EconomicPolicy.objects.get(trial=walkback)
    assert policy.configured and policy.value_set["name"].startswith("EQ-5D-5L value set for Australia")
    assert policy.currency == "AUD" and set(policy.care_unit_costs) >= {"gp", "physiotherapist", "emergency"}
    policy.value_set = {"name": "Somewhere", "source": "A paper", "decrements": [[0, 0.1]] * 5}
    policy.currency = "dollars"
    with pytest.raises(ValidationError) as raised:
        policy.full_clean()
    assert set(raised.value.message_dict) == {"value_set", "currency"}


def test_an_unblinded_release_values_the_eq5d_answers_and_without_a_policy_says_not_configured(
    locked: Trial, investigator, releases_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, files = built(locked, "unblinded", investigator, releases_dir)
    plan = json.loads(files["analysis/plan.json"])
    economic = plan["economic"]
    assert economic["currency"] == "AUD" and economic["utility"]["timepoints"][0] == {"month": 3, "column": "eq5d_profile_m03"}
    assert economic["sessions"]["file"] == "sessions.csv" and economic["care"]["answered"][0]["column"] == "monthly_day_m01"
    results = json.loads(files["analysis/results.json"])["economic"]
    # The one answer at 3 months is 22222: 1 - 0.039 - 0.030 - 0 - 0.044 - 0.032 under the Australian set.
    assert results["groups"]["pooled"]["utility"]["3"]["mean"] == pytest.approx(0.855)
    assert results["groups"]["pooled"]["complete"] == 0 and results["groups"]["pooled"]["n"] == 4  # nobody has 12 months yet
    EconomicPolicy.objects.filter(trial=locked).delete()
    with connection.cursor() as cursor:
        config = catalogue.config_load(trial=locked, blinded=False, cursor=cursor)
    assert sap.plan_build(config=config, trial_name="WalkBack", lock_version=1, variant="unblinded", packages={})["economic"] == {
        "eq5d_value_set": None,
        "unit_costs": None,
    }
