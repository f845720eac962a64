"""The statistical analysis plan's analysis in every release: right on data with a known answer,
reproducible from the unzipped release byte for byte, pooled only when blinded, and shown to staff
who may have the release."""

# ruff: noqa: F811  (the release fixtures are imported from test_releases)
from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from lifelines import CoxPHFitter
from scipy.stats import fisher_exact

from closeout.datalock.services import lock_current
from closeout.models import Release
from closeout.releases import analyse
from tests.closeout.test_releases import _fast_passwords, built, datamanager, dataset, fresh, locked, releases_dir, statistician  # noqa: F401
from trial.models import Role, Trial

ARMS = {"walking": "Walking and education", "control": "Control"}


def synthetic_plan(*, blinded: bool = False) -> dict[str, Any]:
    outcomes = [
        {"code": code, "label": label, "days": f"{code}_days", "event": f"{code}_event", "primary": code == "activity_limiting"}
        for code, label in (("activity_limiting", "Activity-limiting recurrence"), ("any", "Recurrence"))
    ]
    return {
        "trial": "Synthetic",
        "lock_version": 1,
        "variant": "blinded" if blinded else "unblinded",
        "alpha": 0.05,
        "population": "itt",
        "files": {"analysis": "analysis.csv", "scores": "questionnaire_scores.csv", "adverse_events": "adverse_events.csv"},
        "arm": None
        if blinded
        else {"column": "arm", "codes": list(ARMS), "labels": ARMS, "intervention": "walking", "control": "control"},
        "strata": ["prior", "referral"],
        "outcomes": outcomes,
        "baseline": [
            {"column": "age_years", "label": "Age (years)", "kind": "continuous"},
            {"column": "sex", "label": "Sex", "kind": "categorical", "codes": [["female", "Female"], ["male", "Male"]]},
        ],
        "repeated": [
            {
                "code": "rmdq_total",
                "label": "Roland-Morris",
                "baseline": "rmdq_total",
                "timepoints": [{"month": m, "column": f"rmdq_total_m{m:02d}"} for m in (3, 6)],
            }
        ],
        "adverse_events": {
            "status": "status",
            "statuses_left_out": ["dismissed"],
            "category": "category",
            "categories": [["back", "Back"], ["lower_extremity", "Lower extremity"]],
            "serious": "serious",
        },
        "economic": {"eq5d_value_set": None, "unit_costs": None},
        "packages": {"numpy": "1", "pandas": "1"},
    }


def synthetic_release(folder: Path, *, n: int = 400, hazard_ratio: float = 0.6, seed: int = 1, never: bool = False) -> Path:
    """A release folder with analysis.csv, the scores and adverse events of ``n`` participants:
    exponential times with the given hazard ratio (walking vs control), censored at 365 days (or
    with no event at all in the walking arm when ``never``), Roland-Morris 2 points lower in walking."""
    rng = np.random.default_rng(seed)
    arm = np.where(np.arange(n) % 2 == 0, "walking", "control")
    rate = np.where(arm == "walking", hazard_ratio, 1.0) / 200
    days = rng.exponential(1 / rate)
    event = (days <= 365).astype(int)
    if never:
        event[arm == "walking"] = 0
    days = np.minimum(days, 365).round().astype(int) + 1
    ids = [f"P{i:04d}" for i in range(n)]
    baseline = rng.integers(0, 20, n)
    analysis = pd.DataFrame(
        {
            "study_id": ids,
            "prior": rng.choice(["yes", "no"], n),
            "referral": rng.choice(["community", "clinician"], n),
            "arm": arm,
            "activity_limiting_days": days,
            "activity_limiting_event": event,
            "any_days": days,
            "any_event": event,
            "age_years": rng.integers(20, 80, n),
            "sex": rng.choice(["female", "male", ""], n),
            "rmdq_total": baseline,
            "itt": 1,
            "per_protocol": 1,
        }
    )
    effect = np.where(arm == "walking", -2.0, 0.0)
    person = rng.normal(0, 2, n)
    scores = pd.DataFrame(
        {
            "study_id": ids,
            **{f"rmdq_total_m{m:02d}": (0.5 * baseline + effect + person + rng.normal(0, 1, n)).round(1) for m in (3, 6)},
        }
    )
    events = pd.DataFrame(
        {
            "ae_number": [1, 2, 3, 4, 5],
            "study_id": [ids[0], ids[0], ids[2], ids[1], ids[3]],
            "status": ["open", "resolved", "open", "open", "dismissed"],
            "category": ["lower_extremity", "lower_extremity", "lower_extremity", "back", "back"],
            "serious": [0, 1, 0, 0, 0],
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    analysis.to_csv(folder / "analysis.csv", index=False)
    scores.to_csv(folder / "questionnaire_scores.csv", index=False)
    events.to_csv(folder / "adverse_events.csv", index=False)
    return folder


# --- On data with a known answer -------------------------------------------------------------------------


def test_the_hazard_ratio_is_near_the_truth_and_is_lifelines_own(tmp_path: Path) -> None:
    folder = synthetic_release(tmp_path, n=600, hazard_ratio=0.6)
    results, _ = analyse.analyse(folder, synthetic_plan())
    primary = results["outcomes"]["activity_limiting"]
    low, high = primary["ci"]
    assert low < 0.6 < high and abs(primary["hazard_ratio"] - 0.6) < 0.12
    frame = pd.read_csv(folder / "analysis.csv")
    frame["treated"] = (frame["arm"] == "walking").astype(int)
    direct = CoxPHFitter().fit(
        frame[["activity_limiting_days", "activity_limiting_event", "treated"]],
        "activity_limiting_days",
        "activity_limiting_event",
    )
    assert primary["hazard_ratio"] == pytest.approx(float(direct.hazard_ratios_["treated"]), rel=1e-9)
    assert primary["p"] == pytest.approx(float(direct.summary.loc["treated", "p"]), rel=1e-6)
    stratified = CoxPHFitter().fit(
        frame[["activity_limiting_days", "activity_limiting_event", "treated", "prior", "referral"]],
        "activity_limiting_days",
        "activity_limiting_event",
        strata=["prior", "referral"],
    )
    assert primary["stratified_hazard_ratio"] == pytest.approx(float(stratified.hazard_ratios_["treated"]), rel=1e-9)
    assert primary["stratified_by"] == ["prior", "referral"] and primary["stratified_ci"][0] < primary["stratified_hazard_ratio"]
    arms = primary["arms"]
    assert arms["walking"]["n"] + arms["control"]["n"] == 600 == primary["pooled"]["n"]
    # exponential: median = ln 2 / rate; the walking arm's is 1/0.6 times the control arm's (200 ln 2 = 139 days)
    assert arms["control"]["median_days"] == pytest.approx(139, rel=0.2)
    assert arms["control"]["median_ci"][0] < arms["control"]["median_days"] < arms["control"]["median_ci"][1]


def test_a_median_not_reached_is_null_and_a_model_without_events_in_one_arm_is_not_estimable(tmp_path: Path) -> None:
    folder = synthetic_release(tmp_path, n=60, never=True)
    results, _ = analyse.analyse(folder, synthetic_plan())
    primary = results["outcomes"]["activity_limiting"]
    assert primary["arms"]["walking"]["events"] == 0
    assert primary["arms"]["walking"]["median_days"] is None and primary["arms"]["walking"]["median_ci"][1] is None
    assert primary["hazard_ratio"] is None and primary["note"].startswith("not estimable")
    json.loads(analyse.results_dump(results))  # still plain JSON: no NaN, no infinity


def test_adverse_events_count_participants_and_events_with_fisher_against_scipy(tmp_path: Path) -> None:
    folder = synthetic_release(tmp_path, n=40)
    results, _ = analyse.analyse(folder, synthetic_plan())
    rows = {row["code"]: row for row in results["adverse_events"]["rows"]}
    # P0000 and P0002 walk (two events for P0000); P0001 is control with a back event; P0003's is dismissed.
    assert rows["lower_extremity"]["walking"] == {"participants": 2, "events": 3, "n": 20}
    assert rows["lower_extremity"]["control"] == {"participants": 0, "events": 0, "n": 20}
    assert rows["back"]["control"]["participants"] == 1 and rows["any"]["pooled"]["participants"] == 3
    assert rows["serious"]["walking"]["participants"] == 1
    assert rows["lower_extremity"]["fisher_p"] == pytest.approx(fisher_exact([[2, 18], [0, 20]]).pvalue)


def test_the_mixed_model_finds_the_score_difference_and_table_1_counts_missing(tmp_path: Path) -> None:
    folder = synthetic_release(tmp_path, n=200)
    results, _ = analyse.analyse(folder, synthetic_plan())
    model = results["repeated"]["rmdq_total"]["model"]
    assert model["ci"][0] < -2 < model["ci"][1] and model["p"] < 0.001 and model["participants"] == 200
    sex = next(v for v in results["baseline"]["variables"] if v["column"] == "sex")
    assert sex["pooled"]["n"] + sex["pooled"]["missing"] == 200
    assert sum(level["n"] for level in sex["walking"]["levels"]) == sex["walking"]["n"]
    age = next(v for v in results["baseline"]["variables"] if v["column"] == "age_years")
    assert 20 <= age["pooled"]["iqr"][0] <= age["pooled"]["median"] <= age["pooled"]["iqr"][1] <= 80
    assert results["economic"]["configured"] is False


def test_a_blinded_plan_gives_pooled_results_only(tmp_path: Path) -> None:
    folder = synthetic_release(tmp_path, n=60)
    written = analyse.outputs(folder, synthetic_plan(blinded=True))
    text = b"\n".join(data for name, data in written.items() if not name.endswith(".png")).decode().lower()
    for word in ("walking", "control", "hazard", "fisher", "arm"):
        assert word not in text, word
    results = json.loads(written["results.json"])
    assert results["outcomes"]["activity_limiting"]["pooled"]["n"] == 60


def test_results_json_is_rounded_and_sorted_and_plots_are_the_same_each_time(tmp_path: Path) -> None:
    folder = synthetic_release(tmp_path, n=80)
    first, second = analyse.outputs(folder, synthetic_plan()), analyse.outputs(folder, synthetic_plan())
    assert first == second
    assert analyse.rounded({"b": 1 / 3, "a": float("inf")}) == {"b": 0.333333, "a": None}
    assert first["km_activity_limiting.svg"].startswith(b"<?xml") and first["km_activity_limiting.png"].startswith(b"\x89PNG")
    report = first["report.html"].decode()
    assert '<html lang="en">' in report and "<caption>" in report and 'scope="col"' in report
    assert 'role="img" aria-label="Kaplan-Meier' in report and "<metadata>" not in report
    assert not any(external in report for external in ("src=", 'href="http', "<link", "<script", "url(http"))


# --- In a release -------------------------------------------------------------------------------------

ANALYSIS_FILES = {
    "analysis/plan.json",
    "analysis/analyse.py",
    "analysis/requirements.txt",
    "analysis/results.json",
    "analysis/report.html",
    *(f"analysis/km_{code}.{fmt}" for code in ("activity_limiting", "any", "care_seeking") for fmt in ("svg", "png")),
}


def extracted(release: Any, releases_dir: Path, target: Path) -> Path:
    with zipfile.ZipFile(releases_dir / release.zip_name) as archive:
        archive.extractall(target)
    (folder,) = target.iterdir()
    return folder


def test_an_unblinded_release_carries_the_analysis_and_running_it_again_gives_the_same_results(
    locked: Trial,
    investigator,
    releases_dir: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    release, files = built(locked, "unblinded", investigator, releases_dir)
    folder = extracted(release, releases_dir, tmp_path / "release")
    names = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    assert names >= ANALYSIS_FILES
    manifest = files["manifest.csv"].decode()
    assert all(f"\n{name}," in manifest for name in ANALYSIS_FILES) and "analysis/km_any.svg" in files["README.md"].decode()
    assert (folder / "analysis/analyse.py").read_bytes() == Path(analyse.__file__).read_bytes()
    requirements = (folder / "analysis/requirements.txt").read_text().splitlines()
    assert [line.split("==")[0] for line in requirements] == sorted(analyse.PACKAGES)
    results = json.loads((folder / "analysis/results.json").read_text())
    assert results["arm"]["intervention"] == "walking" and results["populations"]["itt"]["pooled"] == 4
    assert set(results["outcomes"]) == {"activity_limiting", "any", "care_seeking"}
    assert results["outcomes"]["activity_limiting"]["primary"] and "hazard_ratio" in results["outcomes"]["any"]
    assert results["economic"]["configured"] is True  # the WalkBack preset configures it (tests/closeout/test_economic.py)
    out = tmp_path / "again"
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(folder / "analysis/analyse.py"), str(folder), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    print(f"analysis of the 4-participant release, in a fresh process: {seconds:.1f} s")
    assert (out / "results.json").read_bytes() == (folder / "analysis/results.json").read_bytes()
    assert (out / "km_activity_limiting.svg").read_bytes() == (folder / "analysis/km_activity_limiting.svg").read_bytes()


def test_a_blinded_release_analysis_names_no_arm_and_compares_nothing(
    locked: Trial,
    investigator,
    releases_dir: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    release, _ = built(locked, "blinded", investigator, releases_dir)
    folder = extracted(release, releases_dir, tmp_path / "release")
    arms = [(code, name) for code, name in locked.arms.values_list("code", "name")]
    for path in (folder / "analysis").iterdir():
        if path.suffix == ".png" or path.name == "analyse.py":  # the script is the same in both variants
            continue
        text = path.read_text().lower()
        for code, name in arms:
            assert f'"{code}"' not in text and name.lower() not in text, (path.name, code)
        assert "hazard" not in text and "fisher" not in text, path.name
    results = json.loads((folder / "analysis/results.json").read_text())
    assert "arm" not in results and results["outcomes"]["activity_limiting"]["pooled"]["n"] == 4
    assert set(results["adverse_events"]["rows"][0]) == {"code", "label", "pooled"}


# --- The analysis page ----------------------------------------------------------------------------------


def ready_release(trial: Trial, by: Any, variant: str, releases_dir: Path, work: Path) -> Release:
    """A ready release whose zip holds only the analysis of synthetic data (400 participants, so the
    hazard ratio is estimable), labelled with the trial's own arms."""
    arms = dict(trial.arms.values_list("code", "name"))
    plan = synthetic_plan(blinded=variant == "blinded")
    if plan["arm"]:
        plan["arm"]["labels"] = {"walking": arms["walking"], "control": arms["control"]}
    folder = synthetic_release(work / variant, n=400)
    number = Release.objects.filter(trial=trial).count() + 1
    release = Release.objects.create(
        trial=trial,
        lock=lock_current(trial=trial),
        number=number,
        variant=variant,
        created_by=by,
        status="ready",
        zip_name=f"analysis-test-{number}.zip",
    )
    releases_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(releases_dir / release.zip_name, "w") as archive:
        for name, data in analyse.outputs(folder, plan).items():
            archive.writestr(f"top/analysis/{name}", data)
    return release


def test_the_analysis_page_shows_the_hazard_ratio_to_roles_that_see_arms_and_pooled_results_otherwise(
    locked: Trial, investigator, statistician, datamanager, releases_dir: Path, client, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    url = reverse("release-analysis")
    client.force_login(fresh(investigator))
    assert 'data-testid="no-analysis"' in client.get(url).content.decode()
    ready_release(locked, investigator, "blinded", releases_dir, tmp_path)
    ready_release(locked, investigator, "unblinded", releases_dir, tmp_path)
    page = client.get(url).content.decode()
    names = list(locked.arms.values_list("name", flat=True))
    assert f"Hazard ratio ({names[0]} vs {names[1]})" in page or f"Hazard ratio ({names[1]} vs {names[0]})" in page
    assert "Fisher" in page and "Stratified by the randomisation strata" in page and "data:image/svg+xml;base64," in page
    assert "<caption>" in page and 'scope="col"' in page and 'scope="row"' in page and 'alt="Kaplan-Meier' in page
    assert 'href="/releases/analysis/"' in client.get(reverse("releases")).content.decode()
    # A statistician who stays blinded after the lock gets the blinded release's pooled results only.
    Role.objects.filter(trial=locked, code="statistician").update(sees_allocation_after_lock=False)
    client.force_login(fresh(statistician))
    page = client.get(url).content.decode()
    assert "From release 1 " in page and "All participants" in page
    assert "Hazard ratio" not in page and "Fisher" not in page and not any(name in page for name in names)
    (releases_dir / "analysis-test-1.zip").unlink()  # the blinded release's zip, gone from the server
    assert client.get(url).status_code == 404
    # Roles that may not have a release: refused.
    client.force_login(fresh(datamanager))
    assert client.get(url).status_code == 403
