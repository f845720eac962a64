"""The statistical analysis plan's analysis of one dataset release: standalone and reproducible.

Every release carries this file as ``analysis/analyse.py``, with ``analysis/plan.json`` (what to
analyse: outcomes, arms, strata, scores, alpha) and ``analysis/requirements.txt`` (the versions it
was run with). From the unzipped release folder::

    python analysis/analyse.py [RELEASE_FOLDER] [--out OUTPUT_FOLDER]

reads the release's own CSV files and writes ``results.json``, the Kaplan-Meier plots (SVG and PNG)
and ``report.html``; ``results.json`` comes out byte for byte as the release has it (floats rounded
to 6 significant digits, sorted keys, nothing timed). A blinded release's plan has no arm: every
result is then pooled, and nothing is given per arm.

Only the standard library, numpy, pandas, scipy, lifelines, statsmodels and matplotlib: no Django.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PLAN = "plan.json"
RESULTS = "results.json"
REPORT = "report.html"
REQUIREMENTS = "requirements.txt"
PACKAGES = ("numpy", "pandas", "scipy", "lifelines", "statsmodels", "matplotlib")
DIGITS = 6  # significant digits of every float in results.json
TREATED = "_treated"  # 1 for the intervention arm, 0 for the comparator
NOT_ESTIMABLE = "not estimable"
# matplotlib's settings for plots that come out the same on every run.
PLOT_RC: dict[str, Any] = {
    "svg.hashsalt": "walkback",
    "svg.fonttype": "none",  # text stays text: smaller, searchable, read by screen readers
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "path.simplify": True,
}
DAYS_PER_MONTH = 365.25 / 12

Json = dict[str, Any]


# --- Reading -----------------------------------------------------------------------------------------


def plan_read(folder: Path) -> Json:
    return dict(json.loads((folder / "analysis" / PLAN).read_text(encoding="utf-8")))


def table_read(folder: Path, name: str) -> pd.DataFrame:
    """A release CSV with every cell as text ('' when empty): codes stay codes; numbers are converted
    where used."""
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")


def numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.where(values != ""), errors="coerce").astype(float)


# --- Numbers for results.json ------------------------------------------------------------------------


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to DIGITS significant digits; NaN and infinity as null."""
    if isinstance(value, dict):
        return {str(key): rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    if isinstance(value, bool | type(None) | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    result = float(f"{number:.{DIGITS}g}")
    return 0.0 if result == 0 else result


def results_dump(results: Json) -> bytes:
    return (json.dumps(rounded(results), sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@contextmanager
def quiet() -> Iterator[None]:
    """Convergence and runtime warnings of small or degenerate data: the results say 'not estimable'."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


# --- Survival ---------------------------------------------------------------------------------------


def km_fit(days: pd.Series, events: pd.Series, *, label: str, alpha: float) -> Any:
    from lifelines import KaplanMeierFitter

    with quiet():
        return KaplanMeierFitter(alpha=alpha, label=label).fit(days, events)


def km_median(fitter: Any) -> Json:
    """The median time to event with its confidence interval; null where the curve does not reach it."""
    from lifelines.utils import median_survival_times

    with quiet():
        median = float(fitter.median_survival_time_)
        bounds = median_survival_times(fitter.confidence_interval_)
    low, high = (float(bounds.iloc[0, 0]), float(bounds.iloc[0, 1])) if len(bounds.columns) == 2 else (math.inf, math.inf)
    return {"median_days": _finite(median), "median_ci": [_finite(low), _finite(high)]}


def survival_summary(days: pd.Series, events: pd.Series, *, alpha: float) -> Json:
    fitter = km_fit(days, events, label="", alpha=alpha)
    return {"n": len(days), "events": int(events.sum()), **km_median(fitter)}


def cox_fit(frame: pd.DataFrame, *, duration: str, event: str, strata: Sequence[str] = (), alpha: float) -> Json:
    """The hazard ratio of TREATED (intervention vs comparator) from a Cox model on the arm only,
    stratified by ``strata`` when given; 'not estimable' when the data cannot give one."""
    from lifelines import CoxPHFitter

    data = frame[[duration, event, TREATED, *strata]].dropna()
    events_per_arm = data.groupby(TREATED)[event].sum()
    if len(events_per_arm) < 2 or events_per_arm.min() == 0:
        # No events in an arm: the partial likelihood has no maximum (the estimate runs off to 0 or infinity).
        return {"hazard_ratio": None, "ci": [None, None], "p": None, "note": f"{NOT_ESTIMABLE}: needs events in both arms"}
    try:
        with quiet():
            fitter = CoxPHFitter(alpha=alpha).fit(data, duration_col=duration, event_col=event, strata=list(strata) or None)
            coef = float(fitter.params_[TREATED])
            low, high = (float(v) for v in fitter.confidence_intervals_.loc[TREATED])
            p = float(fitter.summary.loc[TREATED, "p"])
    except Exception as exc:  # lifelines and statsmodels raise several kinds on degenerate data
        return {"hazard_ratio": None, "ci": [None, None], "p": None, "note": f"{NOT_ESTIMABLE}: {type(exc).__name__}"}
    if not all(math.isfinite(v) and abs(v) < 20 for v in (coef, low, high)):
        return {"hazard_ratio": None, "ci": [None, None], "p": None, "note": f"{NOT_ESTIMABLE}: the model did not converge"}
    return {"hazard_ratio": math.exp(coef), "ci": [math.exp(low), math.exp(high)], "p": p}


def outcome_analyse(analysis: pd.DataFrame, outcome: Json, plan: Json) -> Json:
    alpha = float(plan["alpha"])
    frame = analysis.assign(
        _days=numbers(analysis[outcome["days"]]),
        _event=numbers(analysis[outcome["event"]]),
    ).dropna(subset=["_days", "_event"])
    result: Json = {
        "label": outcome["label"],
        "primary": bool(outcome.get("primary")),
        "missing": int(len(analysis) - len(frame)),
        "pooled": survival_summary(frame["_days"], frame["_event"], alpha=alpha),
    }
    arm = plan.get("arm")
    if not arm:
        return result
    result["arms"] = {
        code: survival_summary(part["_days"], part["_event"], alpha=alpha)
        for code in arm["codes"]
        for part in [frame[frame[arm["column"]] == code]]
    }
    compared = frame[frame[arm["column"]].isin([arm["intervention"], arm["control"]])]
    compared = compared.assign(**{TREATED: (compared[arm["column"]] == arm["intervention"]).astype(int)})
    cox = cox_fit(compared, duration="_days", event="_event", alpha=alpha)
    result.update(cox)
    strata = [column for column in plan["strata"] if column in compared.columns]
    stratified = compared.replace({column: {"": np.nan} for column in strata})
    stratified_cox = cox_fit(stratified, duration="_days", event="_event", strata=strata, alpha=alpha)
    result["stratified_hazard_ratio"] = stratified_cox["hazard_ratio"]
    result["stratified_ci"] = stratified_cox["ci"]
    result["stratified_p"] = stratified_cox["p"]
    result["stratified_by"] = strata
    if "note" in stratified_cox:
        result["stratified_note"] = stratified_cox["note"]
    return result


# --- Adverse events ---------------------------------------------------------------------------------


def fisher_p(a: int, n1: int, b: int, n2: int) -> float | None:
    """Two-sided Fisher's exact p for a of n1 against b of n2 participants."""
    from scipy.stats import fisher_exact

    if n1 == 0 or n2 == 0:
        return None
    return float(fisher_exact([[a, n1 - a], [b, n2 - b]]).pvalue)


def adverse_events(analysis: pd.DataFrame, events: pd.DataFrame, plan: Json) -> Json:
    """Per category (and any, and serious): participants with at least one event and the number of
    events, pooled and per arm, with Fisher's exact p between the two arms compared."""
    spec = plan["adverse_events"]
    arm = plan.get("arm")
    events = events[~events[spec["status"]].isin(spec["statuses_left_out"])]
    events = events[events["study_id"].isin(analysis["study_id"])]
    groups: dict[str, pd.Series] = {"pooled": analysis["study_id"]}
    if arm:
        for code in arm["codes"]:
            groups[code] = analysis.loc[analysis[arm["column"]] == code, "study_id"]
    rows: list[tuple[str, str, pd.DataFrame]] = [("any", "Any adverse event", events)]
    rows += [(code, label, events[events[spec["category"]] == code]) for code, label in spec["categories"]]
    uncategorised = events[~events[spec["category"]].isin([code for code, _ in spec["categories"]])]
    if len(uncategorised):
        rows.append(("uncategorised", "Not categorised", uncategorised))
    rows.append(("serious", "Serious adverse event", events[events[spec["serious"]] == "1"]))
    result: list[Json] = []
    for code, label, selected in rows:
        row: Json = {"code": code, "label": label}
        for group, ids in groups.items():
            mine = selected[selected["study_id"].isin(ids)]
            row[group] = {"participants": int(mine["study_id"].nunique()), "events": len(mine), "n": len(ids)}
        if arm:
            first, second = row[arm["intervention"]], row[arm["control"]]
            row["fisher_p"] = fisher_p(first["participants"], first["n"], second["participants"], second["n"])
        result.append(row)
    return {"statuses_left_out": list(spec["statuses_left_out"]), "rows": result}


# --- Table 1 ----------------------------------------------------------------------------------------


def continuous_summary(values: pd.Series) -> Json:
    present = values.dropna()
    if not len(present):
        return {"n": 0, "missing": len(values), "mean": None, "sd": None, "median": None, "iqr": [None, None]}
    return {
        "n": len(present),
        "missing": int(len(values) - len(present)),
        "mean": float(present.mean()),
        "sd": float(present.std(ddof=1)) if len(present) > 1 else None,
        "median": float(present.median()),
        "iqr": [float(present.quantile(0.25)), float(present.quantile(0.75))],
    }


def categorical_summary(values: pd.Series, codes: Sequence[Sequence[str]]) -> Json:
    present = values[values != ""]
    levels = []
    for code, label in codes:
        count = int((present == code).sum())
        levels.append({"code": code, "label": label, "n": count, "percent": 100 * count / len(present) if len(present) else None})
    return {"n": len(present), "missing": int(len(values) - len(present)), "levels": levels}


def baseline_table(analysis: pd.DataFrame, plan: Json) -> Json:
    """Table 1: every baseline variable pooled and per arm; percentages of those with a value."""
    arm = plan.get("arm")
    groups = {"pooled": analysis}
    if arm:
        groups.update({code: analysis[analysis[arm["column"]] == code] for code in arm["codes"]})
    variables = []
    for variable in plan["baseline"]:
        column = variable["column"]
        if column not in analysis.columns:
            continue
        entry: Json = {"column": column, "label": variable["label"], "kind": variable["kind"]}
        for group, frame in groups.items():
            if variable["kind"] == "continuous":
                entry[group] = continuous_summary(numbers(frame[column]))
            else:
                entry[group] = categorical_summary(frame[column], variable["codes"])
        variables.append(entry)
    return {"n": {group: len(frame) for group, frame in groups.items()}, "variables": variables}


# --- Repeated measures ------------------------------------------------------------------------------


def repeated_long(analysis: pd.DataFrame, scores: pd.DataFrame, measure: Json, plan: Json) -> pd.DataFrame:
    """One row per participant and follow-up timepoint with a value: value, month, baseline (and arm)."""
    keep = ["study_id", measure["baseline"]] + ([plan["arm"]["column"]] if plan.get("arm") else [])
    merged = analysis[keep].merge(scores, on="study_id", how="left", validate="one_to_one")
    parts = []
    for point in measure["timepoints"]:
        if point["column"] not in merged.columns:
            continue
        part = pd.DataFrame(
            {
                "study_id": merged["study_id"],
                "month": int(point["month"]),
                "value": numbers(merged[point["column"]]),
                "baseline": numbers(merged[measure["baseline"]]),
            }
        )
        if plan.get("arm"):
            part["arm"] = merged[plan["arm"]["column"]].to_numpy()
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["study_id", "month", "value", "baseline"])
    return pd.concat(parts, ignore_index=True).dropna(subset=["value"])


def mixed_model(long: pd.DataFrame, arm: Json, *, alpha: float) -> Json:
    """value ~ arm + baseline + month (a factor), random intercept per participant (statsmodels
    MixedLM, REML): the arm effect, intervention minus comparator, on the score's scale."""
    import statsmodels.formula.api as smf

    data = long.dropna(subset=["value", "baseline"])
    data = data[data["arm"].isin([arm["intervention"], arm["control"]])]
    data = data.assign(treated=(data["arm"] == arm["intervention"]).astype(int)).sort_values(["study_id", "month"])
    participants = data.groupby("treated")["study_id"].nunique()
    if len(participants) < 2 or participants.min() < 2 or data["study_id"].nunique() < 5:
        return {"effect": None, "ci": [None, None], "p": None, "note": f"{NOT_ESTIMABLE}: too few participants with values"}
    formula = "value ~ treated + baseline" + (" + C(month)" if data["month"].nunique() > 1 else "")
    try:
        with quiet():
            fitted = smf.mixedlm(formula, data, groups=data["study_id"]).fit(reml=True)
            effect = float(fitted.params["treated"])
            low, high = (float(v) for v in fitted.conf_int(alpha=alpha).loc["treated"])
            p = float(fitted.pvalues["treated"])
    except Exception as exc:  # lifelines and statsmodels raise several kinds on degenerate data
        return {"effect": None, "ci": [None, None], "p": None, "note": f"{NOT_ESTIMABLE}: {type(exc).__name__}"}
    if not all(math.isfinite(v) for v in (effect, low, high, p)):
        return {"effect": None, "ci": [None, None], "p": None, "note": f"{NOT_ESTIMABLE}: the model did not converge"}
    return {
        "effect": effect,
        "ci": [low, high],
        "p": p,
        "observations": len(data),
        "participants": int(data["study_id"].nunique()),
        "formula": formula + " + (1 | study_id)",
    }


def repeated_measures(analysis: pd.DataFrame, scores: pd.DataFrame, plan: Json) -> dict[str, Json]:
    arm = plan.get("arm")
    result: dict[str, Json] = {}
    for measure in plan["repeated"]:
        long = repeated_long(analysis, scores, measure, plan)
        entry: Json = {"label": measure["label"], "timepoints": []}
        for point in measure["timepoints"]:
            at = long[long["month"] == int(point["month"])]
            row: Json = {"month": int(point["month"]), "pooled": continuous_summary(at["value"])}
            if arm:
                for code in arm["codes"]:
                    row[code] = continuous_summary(at.loc[at["arm"] == code, "value"])
            entry["timepoints"].append(row)
        if arm:
            entry["model"] = mixed_model(long, arm, alpha=float(plan["alpha"]))
        result[measure["code"]] = entry
    return result


# --- Cost-effectiveness -----------------------------------------------------------------------------

COSTS = ("care", "work", "sessions")  # the cost components, each per participant over the horizon


def eq5d_utility(profile: Any, value_set: Json) -> float | None:
    """The utility of an EQ-5D-5L profile ("11213": mobility, self-care, usual activities, pain,
    anxiety) under ``value_set``: start, minus the intercept for any state but full health, minus
    each dimension's decrement at its level, minus each ``any_level`` term whose level occurs."""
    decrements = value_set["decrements"]
    if not isinstance(profile, str) or not re.fullmatch(f"[1-5]{{{len(decrements)}}}", profile):
        return None
    levels = [int(digit) for digit in profile]
    value = float(value_set.get("start", 1.0))
    if any(level > 1 for level in levels):
        value -= float(value_set.get("intercept", 0.0))
    value -= sum(float(row[level - 1]) for row, level in zip(decrements, levels, strict=True))
    value -= sum(float(amount) for level, amount in (value_set.get("any_level") or {}).items() if int(level) in levels)
    return value


def discount_factor(rate: float, years: Any) -> Any:
    """1 in the first year, 1/(1+rate) in the second, ...: ``years`` are whole years from randomisation."""
    return (1.0 + rate) ** -np.floor(years)


def participant_economics(
    folder: Path, analysis: pd.DataFrame, scores: pd.DataFrame, spec: Json, arm: Json | None
) -> pd.DataFrame:
    """One row per randomised participant: the utility at baseline and each timepoint, QALYs by the
    area under the curve (trapezoids, discounted by the year each segment's midpoint falls in), the
    costs of care, of work days missed and of sessions attended over the horizon (discounted by
    year), and whether the participant is a complete case (every utility and every questionnaire
    that reports care answered)."""
    value_set, rate = spec["eq5d_value_set"], float(spec["discount_rate"])
    units = spec["unit_costs"]
    frame = analysis[["study_id", *([arm["column"]] if arm else [])]].copy()
    ids = frame["study_id"]

    baseline_spec = spec["utility"]["baseline"]
    baseline = table_read(folder, baseline_spec["file"]) if (folder / baseline_spec["file"]).exists() else pd.DataFrame()
    profiles = (
        baseline.set_index("study_id")[baseline_spec["column"]]
        if baseline_spec["column"] in baseline.columns
        else pd.Series(dtype=str)
    )
    utilities = ["utility_m00"]
    frame["utility_m00"] = [eq5d_utility(profiles.get(i), value_set) for i in ids]
    indexed = scores.set_index("study_id")
    months = [0]
    for point in spec["utility"]["timepoints"]:
        name = f"utility_m{int(point['month']):02d}"
        column = indexed[point["column"]] if point["column"] in indexed.columns else pd.Series(dtype=str)
        frame[name] = [eq5d_utility(column.get(i), value_set) for i in ids]
        utilities.append(name)
        months.append(int(point["month"]))
    frame[utilities] = frame[utilities].astype(float)
    qalys = pd.Series(0.0, index=frame.index)
    for (start, end), (first, second) in zip(pairwise(months), pairwise(utilities), strict=True):
        factor = discount_factor(rate, (start + end) / 2 / 12)
        qalys = qalys + (frame[first] + frame[second]) / 2 * (end - start) / 12 * factor
    frame["qalys"] = qalys if len(months) > 1 else np.nan

    care = spec["care"]
    horizon = int(spec["horizon_months"])
    episodes = table_read(folder, care["file"]) if (folder / care["file"]).exists() else pd.DataFrame(columns=["study_id"])
    costs = {name: pd.Series(0.0, index=frame.index) for name in COSTS}
    uncosted: set[str] = set()
    if len(episodes):
        month = numbers(episodes[care["month"]])
        episodes = episodes[month <= horizon].assign(_factor=discount_factor(rate, (month[month <= horizon] - 1) // 12))
        prices = {str(code): float(cost) for code, cost in units["care"].items()}
        sought = episodes[care["care_sought"]] == "1"
        contacts = episodes[care["care_from"]].where(sought, "").str.split(care["separator"])
        for codes in contacts:
            uncosted.update(code for code in codes if code and code not in prices)
        episodes = episodes.assign(
            _care=[sum(prices.get(code, 0.0) for code in codes if code) for codes in contacts] * episodes["_factor"],
            _work=numbers(episodes[care["work_days"]]).fillna(0) * float(units.get("work_day") or 0) * episodes["_factor"],
        )
        summed = episodes.groupby("study_id")[["_care", "_work"]].sum()
        costs["care"] = ids.map(summed["_care"]).fillna(0.0)
        costs["work"] = ids.map(summed["_work"]).fillna(0.0)
    sessions = spec.get("sessions")
    if sessions and units.get("session") is not None and (folder / sessions["file"]).exists():
        attended = table_read(folder, sessions["file"])
        attended = attended[attended[sessions["status"]].isin(sessions["counted"])]
        attended = attended.assign(
            _cost=float(units["session"]) * discount_factor(rate, numbers(attended[sessions["day"]]).fillna(0) / 365.25)
        )
        costs["sessions"] = ids.map(attended.groupby("study_id")["_cost"].sum()).fillna(0.0)
    for name in COSTS:
        frame[f"cost_{name}"] = costs[name].astype(float)
    frame["cost_total"] = sum(frame[f"cost_{name}"] for name in COSTS)
    answered = [point["column"] for point in care["answered"]]
    care_known = pd.Series(True, index=frame.index)
    for column in answered:
        values = ids.map(indexed[column]) if column in indexed.columns else pd.Series("", index=frame.index)
        care_known &= values.fillna("") != ""
    frame["complete"] = frame["qalys"].notna() & care_known
    frame.attrs["uncosted"] = sorted(uncosted)
    return frame


def economic_summary(frame: pd.DataFrame) -> Json:
    """Utilities (everyone with a value) and, over complete cases, QALYs and costs."""
    complete = frame[frame["complete"]]
    utilities = [column for column in frame.columns if column.startswith("utility_m")]
    return {
        "n": len(frame),
        "complete": len(complete),
        "missing": int(len(frame) - len(complete)),
        "utility": {str(int(column.removeprefix("utility_m"))): continuous_summary(frame[column]) for column in utilities},
        "qalys": continuous_summary(complete["qalys"]),
        "costs": {name: continuous_summary(complete[f"cost_{name}"]) for name in (*COSTS, "total")},
    }


def _adjusted_difference(qalys: np.ndarray, treated: np.ndarray, baseline: np.ndarray) -> float:
    """The difference in QALYs adjusted for baseline utility: the coefficient of the arm in an
    ordinary least-squares regression of QALYs on arm and baseline utility (Manca et al. 2005)."""
    design = np.column_stack([np.ones(len(qalys)), treated, baseline])
    coefficients, *_ = np.linalg.lstsq(design, qalys, rcond=None)
    return float(coefficients[1])


def _interval(values: np.ndarray, alpha: float) -> list[float]:
    return [float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))]


QUADRANTS = {
    "more_effective_more_costly": (1, 1),
    "more_effective_less_costly": (1, -1),
    "less_effective_more_costly": (-1, 1),
    "less_effective_less_costly": (-1, -1),
}


def incremental(frame: pd.DataFrame, arm: Json, spec: Json, *, alpha: float) -> Json:
    """Intervention minus comparator over complete cases: costs (difference in means), QALYs
    (adjusted for baseline utility), the ICER, and a non-parametric bootstrap (participants resampled
    with replacement within each arm, a fixed seed) for their intervals, the net monetary benefit
    and the probability of cost-effectiveness at the willingness-to-pay threshold."""
    complete = frame[frame["complete"] & frame[arm["column"]].isin([arm["intervention"], arm["control"]])]
    groups = [complete[complete[arm["column"]] == code] for code in (arm["intervention"], arm["control"])]
    if min(len(group) for group in groups) < 2:
        return {"note": f"{NOT_ESTIMABLE}: fewer than two complete cases in an arm"}
    costs = [group["cost_total"].to_numpy(float) for group in groups]
    qalys = [group["qalys"].to_numpy(float) for group in groups]
    baselines = [group["utility_m00"].to_numpy(float) for group in groups]
    sizes = [len(group) for group in groups]
    treated = np.concatenate([np.ones(sizes[0]), np.zeros(sizes[1])])

    def deltas(picks: Sequence[np.ndarray]) -> tuple[float, float]:
        cost = float(costs[0][picks[0]].mean() - costs[1][picks[1]].mean())
        qaly = _adjusted_difference(
            np.concatenate([qalys[0][picks[0]], qalys[1][picks[1]]]),
            treated,
            np.concatenate([baselines[0][picks[0]], baselines[1][picks[1]]]),
        )
        return cost, qaly

    delta_cost, delta_qaly = deltas([np.arange(sizes[0]), np.arange(sizes[1])])
    bootstrap = spec["bootstrap"]
    resamples = int(bootstrap["resamples"])
    rng = np.random.default_rng(int(bootstrap["seed"]))
    sampled = np.array([deltas([rng.integers(0, size, size) for size in sizes]) for _ in range(resamples)])
    boot_cost, boot_qaly = sampled[:, 0], sampled[:, 1]
    threshold = float(spec["wtp_threshold"])
    result: Json = {
        "complete": {arm["intervention"]: sizes[0], arm["control"]: sizes[1]},
        "cost": {"estimate": delta_cost, "ci": _interval(boot_cost, alpha)},
        "qalys": {"estimate": delta_qaly, "ci": _interval(boot_qaly, alpha), "adjusted_for": "baseline utility"},
        "resamples": resamples,
        "seed": int(bootstrap["seed"]),
        "wtp_threshold": threshold,
        "net_monetary_benefit": {
            "estimate": threshold * delta_qaly - delta_cost,
            "ci": _interval(threshold * boot_qaly - boot_cost, alpha),
        },
        "probability_cost_effective": float(np.mean(threshold * boot_qaly - boot_cost > 0)),
        "acceptability": [
            {"threshold": level, "probability": float(np.mean(level * boot_qaly - boot_cost > 0))}
            for level in (0.0, threshold / 2, threshold, 1.5 * threshold, 2 * threshold)
        ],
        "quadrants": {
            name: float(np.mean((np.sign(boot_qaly) == effect) & (np.where(boot_cost > 0, 1, -1) == cost)))
            for name, (effect, cost) in QUADRANTS.items()
        },
    }
    if delta_qaly == 0:
        result["icer"] = {"estimate": None, "ci": [None, None], "note": f"{NOT_ESTIMABLE}: no difference in QALYs"}
        return result
    icer: Json = {"estimate": delta_cost / delta_qaly, "ci": [None, None]}
    if delta_qaly > 0 and delta_cost <= 0:
        icer["note"] = "the intervention dominates: more QALYs at lower cost"
    elif delta_qaly < 0 and delta_cost >= 0:
        icer["note"] = "the intervention is dominated: fewer QALYs at higher cost"
    if np.all(np.sign(boot_qaly) == np.sign(delta_qaly)):
        icer["ci"] = _interval(boot_cost / boot_qaly, alpha)
    else:
        icer["ci_note"] = (
            "no interval: the bootstrap's incremental QALYs include zero, where the ratio is undefined "
            "(see the net monetary benefit and the probability of cost-effectiveness)"
        )
    result["icer"] = icer
    return result


def economic(folder: Path, analysis: pd.DataFrame, scores: pd.DataFrame, plan: Json) -> Json:
    spec = plan.get("economic") or {}
    if not spec.get("eq5d_value_set") or not spec.get("unit_costs"):
        return {
            "configured": False,
            "note": "Not configured: the trial has no EQ-5D-5L value set and no unit costs, so no QALYs, costs or ICER.",
        }
    arm = plan.get("arm")
    frame = participant_economics(folder, analysis, scores, spec, arm)
    value_set = spec["eq5d_value_set"]
    result: Json = {
        "configured": True,
        "value_set": value_set["name"],
        "value_set_source": value_set["source"],
        "currency": spec["currency"],
        "price_year": spec.get("price_year"),
        "horizon_months": int(spec["horizon_months"]),
        "discount_rate": float(spec["discount_rate"]),
        "unit_costs": spec["unit_costs"],
        "uncosted_care": frame.attrs["uncosted"],
        "sessions_costed": bool(spec.get("sessions")) and spec["unit_costs"].get("session") is not None,
        "method": (
            "EQ-5D-5L utilities from the value set at baseline and each timepoint; QALYs by the area under the curve "
            "(trapezoids) over the horizon; costs of care sought (one contact per kind of care per episode), work days "
            "missed and sessions attended, times their unit costs; complete cases only (every utility and every "
            "questionnaire reporting care answered)."
        ),
        "groups": {"pooled": economic_summary(frame)},
    }
    if not arm:
        result["note"] = "Blinded release: QALYs and costs pooled over all participants; nothing is compared."
        return result
    for code in arm["codes"]:
        result["groups"][code] = economic_summary(frame[frame[arm["column"]] == code])
    result["incremental"] = incremental(frame, arm, spec, alpha=float(plan["alpha"]))
    result["note"] = "Incremental costs and QALYs of the intervention arm against the comparator, with a bootstrap interval."
    return result


# --- Plots ------------------------------------------------------------------------------------------


def km_plot(analysis: pd.DataFrame, outcome: Json, plan: Json) -> tuple[bytes, bytes, str]:
    """The Kaplan-Meier curve(s) of an outcome with the numbers at risk: SVG, PNG and alt text."""
    import matplotlib
    from lifelines.plotting import add_at_risk_counts
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    alpha = float(plan["alpha"])
    frame = analysis.assign(_days=numbers(analysis[outcome["days"]]), _event=numbers(analysis[outcome["event"]]))
    frame = frame.dropna(subset=["_days", "_event"])
    arm = plan.get("arm")
    groups: list[tuple[str, pd.DataFrame]]
    if arm:
        groups = [(arm["labels"][code], frame[frame[arm["column"]] == code]) for code in arm["codes"]]
    else:
        groups = [("All participants", frame)]
    groups = [(label, part) for label, part in groups if len(part)]
    with matplotlib.rc_context(PLOT_RC), quiet():  # type: ignore[arg-type]  # (its keys are typed as literals)
        figure = Figure(figsize=(7, 4.8))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot(1, 1, 1)
        fitters = []
        for label, part in groups:
            fitter = km_fit(part["_days"], part["_event"], label=label, alpha=alpha)
            fitter.plot_survival_function(ax=axes, ci_show=True, show_censors=True, censor_styles={"ms": 4, "marker": "|"})
            fitters.append(fitter)
        axes.set_xlabel("Days from randomisation")
        axes.set_ylabel(f"Free of {outcome['label'].lower()}")
        axes.set_ylim(0, 1.02)
        axes.set_title(f"Time to first {outcome['label'].lower()}")
        if fitters:
            add_at_risk_counts(*fitters, ax=axes, fig=figure, rows_to_show=["At risk"])
        figure.tight_layout()
        svg, png = _saved(figure, "svg"), _saved(figure, "png")
    names = " and ".join(label for label, _ in groups) or "no participants"
    alt = (
        f"Kaplan-Meier curve of the proportion free of {outcome['label'].lower()} against days from randomisation, "
        f"for {names}, with the numbers at risk below the axis."
    )
    return svg, png, alt


def _saved(figure: Any, fmt: str) -> bytes:
    import io

    buffer = io.BytesIO()
    metadata_ = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(buffer, format=fmt, metadata=metadata_, dpi=100)
    return buffer.getvalue()


def svg_inline(svg: bytes, alt: str) -> str:
    """An SVG file as markup to place in HTML: no XML prologue, an image role and its alt text."""
    text = svg.decode("utf-8")
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)  # RDF names, no content
    return text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(alt)}" ', 1)


# --- The report -------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "NA"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(ci: Sequence[float | None], digits: int = 2) -> str:
    return f"{fmt(ci[0], digits)} to {fmt(ci[1], digits)}"


def fmt_median(summary: Json) -> str:
    if summary["median_days"] is None:
        return "not reached"
    low, high = summary["median_ci"]
    return f"{fmt(summary['median_days'], 0)} ({'NA' if low is None else fmt(low, 0)} to {'not reached' if high is None else fmt(high, 0)})"


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    e = html.escape
    out = [f"<table>\n<caption>{e(caption)}</caption>\n<thead><tr>"]
    out += [f'<th scope="col">{e(cell)}</th>' for cell in head]
    out.append("</tr></thead>\n<tbody>\n")
    for row in rows:
        out.append(f'<tr><th scope="row">{e(row[0])}</th>' + "".join(f"<td>{e(cell)}</td>" for cell in row[1:]) + "</tr>\n")
    out.append("</tbody>\n</table>\n")
    return "".join(out)


def _groups(results: Json) -> list[tuple[str, str]]:
    arm = results.get("arm")
    if not arm:
        return [("pooled", "All participants")]
    return [(code, arm["labels"][code]) for code in arm["codes"]] + [("pooled", "Overall")]


def baseline_rows(results: Json) -> list[list[str]]:
    groups = _groups(results)
    rows: list[list[str]] = []
    for variable in results["baseline"]["variables"]:
        if variable["kind"] == "continuous":
            rows.append(
                [f"{variable['label']}, mean (SD)"]
                + [f"{fmt(variable[g]['mean'])} ({fmt(variable[g]['sd'])})" for g, _ in groups]
            )
            rows.append(
                [f"{variable['label']}, median (IQR)"]
                + [f"{fmt(variable[g]['median'])} ({fmt_ci(variable[g]['iqr'])})" for g, _ in groups]
            )
        else:
            for index, level in enumerate(variable["pooled"]["levels"]):
                label = f"{variable['label']}: {level['label']}" if index == 0 else f"  {level['label']}"
                cells = []
                for group, _ in groups:
                    mine = variable[group]["levels"][index]
                    cells.append(f"{mine['n']} ({fmt(mine['percent'], 1)}%)")
                rows.append([label, *cells])
        rows.append([f"{variable['label']}: missing"] + [str(variable[g]["missing"]) for g, _ in groups])
    return rows


def fmt_money(value: float | None, currency: str) -> str:
    return "NA" if value is None else f"{currency} {value:,.0f}"


def economic_html(results: Json, groups: Sequence[tuple[str, str]]) -> str:
    """The cost-effectiveness paragraph and tables: per group, complete cases, QALYs and costs; with
    arms, the incremental analysis."""
    e = html.escape
    economic_ = results["economic"]
    if not economic_["configured"]:
        return f"<p>{e(economic_['note'])}</p>\n"
    currency = economic_["currency"]
    priced = f", {economic_['price_year']} prices" if economic_.get("price_year") else ""
    discount = fmt(100 * economic_["discount_rate"], 1)
    text = (
        f"Utilities from the {economic_['value_set']} ({economic_['value_set_source']}). QALYs by the area under the "
        f"curve over {economic_['horizon_months']} months; costs in {currency}{priced}; both discounted at {discount}% a "
        f"year after the first year. {economic_['method']}"
    )
    if economic_["uncosted_care"]:
        text += f" Care without a unit cost, counted as zero: {', '.join(economic_['uncosted_care'])}."
    parts = [f"<p>{e(text)}</p>\n"]
    costs = [name for name in (*COSTS, "total") if name != "sessions" or economic_.get("sessions_costed")]
    rows = []
    for group, label in groups:
        mine = economic_["groups"][group]
        cells = [
            label,
            f"{mine['complete']} of {mine['n']}",
            f"{fmt(mine['qalys']['mean'], 3)} ({fmt(mine['qalys']['sd'], 3)})",
            *(f"{fmt_money(mine['costs'][name]['mean'], currency)}" for name in costs),
        ]
        rows.append(cells)
    names = {"care": "Care", "work": "Work days missed", "sessions": "Sessions", "total": "Total cost"}
    head = ["Group", "Complete cases", "QALYs, mean (SD)", *(names[name] for name in costs)]
    parts.append(_table(f"QALYs and mean costs per participant ({currency}), complete cases", head, rows))
    utility_rows = [
        [f"Month {int(month)}"]
        + [
            f"{fmt(economic_['groups'][g]['utility'][month]['mean'], 3)}, n={economic_['groups'][g]['utility'][month]['n']}"
            for g, _ in groups
        ]
        for month in economic_["groups"]["pooled"]["utility"]
    ]
    parts.append(_table("EQ-5D-5L utility: mean by month", ["Timepoint", *[label for _, label in groups]], utility_rows))
    arm = results.get("arm")
    if not arm:
        parts.append(f"<p>{e(economic_['note'])}</p>\n")
        return "".join(parts)
    change = economic_["incremental"]
    if "cost" not in change:
        parts.append(f"<p>Incremental analysis {e(change['note'])}.</p>\n")
        return "".join(parts)
    first, second = arm["labels"][arm["intervention"]], arm["labels"][arm["control"]]
    icer = change["icer"]
    threshold = fmt_money(change["wtp_threshold"], currency)
    sentence = (
        f"{first} against {second}: incremental cost {fmt_money(change['cost']['estimate'], currency)} (95% CI "
        f"{fmt_money(change['cost']['ci'][0], currency)} to {fmt_money(change['cost']['ci'][1], currency)}), incremental QALYs "
        f"{fmt(change['qalys']['estimate'], 4)} (95% CI {fmt_ci(change['qalys']['ci'], 4)}), adjusted for baseline utility; "
        f"ICER {fmt_money(icer['estimate'], currency)} per QALY"
    )
    if icer["ci"][0] is not None:
        sentence += f" (95% CI {fmt_money(icer['ci'][0], currency)} to {fmt_money(icer['ci'][1], currency)})"
    if icer.get("note"):
        sentence += f"; {icer['note']}"
    if icer.get("ci_note"):
        sentence += f"; {icer['ci_note']}"
    sentence += (
        f". At {threshold} per QALY the probability that the intervention is cost-effective is "
        f"{fmt(100 * change['probability_cost_effective'], 1)}% ({change['resamples']} bootstrap resamples)."
    )
    parts.append(f"<p>{e(sentence)}</p>\n")
    rows = [
        [
            "Incremental cost",
            fmt_money(change["cost"]["estimate"], currency),
            f"{fmt_money(change['cost']['ci'][0], currency)} to {fmt_money(change['cost']['ci'][1], currency)}",
        ],
        ["Incremental QALYs", fmt(change["qalys"]["estimate"], 4), fmt_ci(change["qalys"]["ci"], 4)],
        [
            "ICER (cost per QALY)",
            fmt_money(icer["estimate"], currency),
            f"{fmt_money(icer['ci'][0], currency)} to {fmt_money(icer['ci'][1], currency)}"
            if icer["ci"][0] is not None
            else "not defined",
        ],
        [
            f"Net monetary benefit at {threshold}",
            fmt_money(change["net_monetary_benefit"]["estimate"], currency),
            f"{fmt_money(change['net_monetary_benefit']['ci'][0], currency)} to {fmt_money(change['net_monetary_benefit']['ci'][1], currency)}",
        ],
        [f"Probability cost-effective at {threshold}", f"{fmt(100 * change['probability_cost_effective'], 1)}%", ""],
    ]
    parts.append(_table(f"Incremental analysis: {first} minus {second}", ["Measure", "Estimate", "95% interval"], rows))
    return "".join(parts)


def report_html(results: Json, figures: Mapping[str, str]) -> str:
    """The results section of a paper, as one self-contained, accessible HTML page."""
    e = html.escape
    arm = results.get("arm")
    groups = _groups(results)
    title = f"{results['trial']}: results from database lock v{results['lock_version']} ({results['variant']})"
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{e(title)}</title>\n",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
        "table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left}"
        "caption{font-weight:bold;text-align:left;padding:.25rem 0}svg{max-width:100%;height:auto}</style>\n",
        "</head>\n<body>\n<main>\n",
        f"<h1>{e(title)}</h1>\n",
        "<p>Produced by <code>analysis/analyse.py</code> from this release's own files, as the plan in "
        "<code>analysis/plan.json</code> sets out. Intention to treat: every randomised participant, in the arm "
        "allocated.</p>\n"
        if arm
        else "<p>Produced by <code>analysis/analyse.py</code> from this release's own files. This release is "
        "<strong>blinded</strong>: every result is pooled over all participants, and nothing is compared.</p>\n",
        "<h2>Participants</h2>\n",
    ]
    populations = results["populations"]
    text = f"{populations['itt']['pooled']} participants were randomised and are analysed (intention to treat)"
    if arm:
        text += ": " + ", ".join(f"{populations['itt'][code]} to {arm['labels'][code].lower()}" for code in arm["codes"])
        if populations.get("per_protocol"):
            text += f". {populations['per_protocol']['pooled']} are in the per-protocol population"
    parts.append(f"<p>{e(text)}.</p>\n")
    parts.append(
        _table(
            "Table 1. Baseline characteristics",
            ["Characteristic", *[f"{label} (n={results['baseline']['n'][g]})" for g, label in groups]],
            baseline_rows(results),
        )
    )
    parts.append("<h2>Time-to-event outcomes</h2>\n")
    for code, outcome in results["outcomes"].items():
        heading = "Primary outcome" if outcome["primary"] else "Secondary outcome"
        parts.append(f"<h3>{e(heading)}: time to first {e(outcome['label'].lower())}</h3>\n")
        if arm and outcome.get("hazard_ratio") is not None:
            first, second = arm["labels"][arm["intervention"]], arm["labels"][arm["control"]]
            parts.append(
                f"<p>{e(first)}: median {e(fmt_median(outcome['arms'][arm['intervention']]))} days; {e(second)}: median "
                f"{e(fmt_median(outcome['arms'][arm['control']]))} days. Hazard ratio "
                f"{fmt(outcome['hazard_ratio'])} (95% CI {e(fmt_ci(outcome['ci']))}), p={e(fmt_p(outcome['p']))}; "
                f"stratified by {e(', '.join(outcome['stratified_by']) or 'nothing')}: "
                f"{fmt(outcome['stratified_hazard_ratio'])} (95% CI {e(fmt_ci(outcome['stratified_ci']))}), "
                f"p={e(fmt_p(outcome['stratified_p']))}.</p>\n"
            )
        elif arm:
            parts.append(f"<p>Hazard ratio {e(outcome.get('note', NOT_ESTIMABLE))}.</p>\n")
        rows = [
            [label, str(summary["n"]), str(summary["events"]), fmt_median(summary)]
            for g, label in groups
            for summary in [outcome["arms"][g] if g != "pooled" else outcome["pooled"]]
        ]
        parts.append(
            _table(
                f"Events and median days to first {outcome['label'].lower()}",
                ["Group", "n", "Events", "Median days (95% CI)"],
                rows,
            )
        )
        if code in figures:
            parts.append(
                f"<figure>\n{figures[code]}\n<figcaption>Kaplan-Meier curve: {e(outcome['label'].lower())}.</figcaption>\n</figure>\n"
            )
    parts.append("<h2>Disability and quality of life</h2>\n")
    for measure in results["repeated"].values():
        parts.append(f"<h3>{e(measure['label'])}</h3>\n")
        model = measure.get("model")
        if arm and model and model["effect"] is not None:
            parts.append(
                f"<p>Linear mixed model ({e(model['formula'])}), {model['participants']} participants, {model['observations']} "
                f"observations: difference {e(arm['labels'][arm['intervention']])} minus {e(arm['labels'][arm['control']])} "
                f"{fmt(model['effect'])} (95% CI {e(fmt_ci(model['ci']))}), p={e(fmt_p(model['p']))}.</p>\n"
            )
        elif model:
            parts.append(f"<p>Mixed model {e(model.get('note', NOT_ESTIMABLE))}.</p>\n")
        rows = [
            [f"Month {point['month']}"]
            + [f"{fmt(point[g]['mean'])} ({fmt(point[g]['sd'])}), n={point[g]['n']}" for g, _ in groups]
            for point in measure["timepoints"]
        ]
        parts.append(_table(f"{measure['label']}: mean (SD) by month", ["Timepoint", *[label for _, label in groups]], rows))
    parts.append("<h2>Adverse events</h2>\n")
    head = ["Adverse events", *[f"{label}: participants (events)" for _, label in groups]] + (["Fisher's exact p"] if arm else [])
    rows = []
    for row in results["adverse_events"]["rows"]:
        cells = [row["label"]] + [
            f"{row[g]['participants']}/{row[g]['n']} ({fmt(100 * row[g]['participants'] / row[g]['n'] if row[g]['n'] else None, 1)}%) ({row[g]['events']})"
            for g, _ in groups
        ]
        if arm:
            cells.append(fmt_p(row["fisher_p"]))
        rows.append(cells)
    parts.append(_table("Participants with at least one adverse event, by category", head, rows))
    parts.append("<h2>Cost-effectiveness</h2>\n")
    parts.append(economic_html(results, groups))
    versions = ", ".join(f"{name} {version}" for name, version in sorted(results["packages"].items()))
    parts.append(f"<h2>Software</h2>\n<p>Python with {e(versions)}; alpha {fmt(results['alpha'])}.</p>\n")
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)


# --- The whole analysis -----------------------------------------------------------------------------


def populations(analysis: pd.DataFrame, plan: Json) -> Json:
    arm = plan.get("arm")
    result: Json = {}
    for population in ("itt", "per_protocol"):
        if population not in analysis.columns:
            continue
        flag = analysis[population] == "1"
        counts = {"pooled": int(flag.sum())}
        if arm:
            counts.update({code: int((flag & (analysis[arm["column"]] == code)).sum()) for code in arm["codes"]})
        result[population] = counts
    return result


def analyse(folder: Path, plan: Json) -> tuple[Json, dict[str, tuple[bytes, bytes, str]]]:
    """results.json's content and the plots (name -> SVG, PNG, alt text) of the release in ``folder``."""
    files = plan["files"]
    analysis = table_read(folder, files["analysis"])
    scores = table_read(folder, files["scores"])
    events = table_read(folder, files["adverse_events"])
    arm = plan.get("arm")
    results: Json = {
        "trial": plan["trial"],
        "lock_version": plan["lock_version"],
        "variant": plan["variant"],
        "alpha": plan["alpha"],
        "packages": dict(plan["packages"]),
        "populations": populations(analysis, plan),
        "baseline": baseline_table(analysis, plan),
        "outcomes": {outcome["code"]: outcome_analyse(analysis, outcome, plan) for outcome in plan["outcomes"]},
        "adverse_events": adverse_events(analysis, events, plan),
        "repeated": repeated_measures(analysis, scores, plan),
        "economic": economic(folder, analysis, scores, plan),
        "time_unit": "days",
    }
    if arm:
        results["arm"] = {
            "codes": list(arm["codes"]),
            "labels": dict(arm["labels"]),
            "intervention": arm["intervention"],
            "control": arm["control"],
            "hazard_ratio_of": f"{arm['intervention']} vs {arm['control']}",
        }
    plots = {outcome["code"]: km_plot(analysis, outcome, plan) for outcome in plan["outcomes"]}
    results["figures"] = {code: {"svg": f"km_{code}.svg", "png": f"km_{code}.png", "alt": plots[code][2]} for code in plots}
    return results, plots


def outputs(folder: Path, plan: Json) -> dict[str, bytes]:
    """Every file the analysis writes, by name, in a fixed order: results.json, the plots, report.html."""
    results, plots = analyse(folder, plan)
    written = {RESULTS: results_dump(results)}
    for code, (svg, png, _) in plots.items():
        written[f"km_{code}.svg"] = svg
        written[f"km_{code}.png"] = png
    stored = json.loads(written[RESULTS])  # the report shows the rounded numbers results.json has
    figures = {code: svg_inline(svg, alt) for code, (svg, _, alt) in plots.items()}
    written[REPORT] = report_html(stored, figures).encode()
    return written


def requirements_text(packages: Mapping[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(packages.items()))


def installed_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in PACKAGES}


def main(argv: Sequence[str] | None = None, write: Callable[[str], object] = sys.stderr.write) -> int:
    parser = argparse.ArgumentParser(description="Run the statistical analysis plan on this dataset release.")
    parser.add_argument("folder", nargs="?", help="the unzipped release (default: the folder above this script's)")
    parser.add_argument("--out", help="where to write the results (default: the release's analysis folder)")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder else Path(__file__).resolve().parent.parent
    out = Path(args.out) if args.out else folder / "analysis"
    plan = plan_read(folder)
    import matplotlib

    matplotlib.use("Agg")
    installed = installed_versions()
    for name, version in sorted(plan["packages"].items()):
        if installed.get(name) != version:
            write(
                f"note: {name} {installed.get(name)} is installed, the release used {version} (pip install -r {REQUIREMENTS})\n"
            )
    out.mkdir(parents=True, exist_ok=True)
    for name, data in outputs(folder, plan).items():
        (out / name).write_bytes(data)
    write(f"wrote {RESULTS}, the plots and {REPORT} to {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
