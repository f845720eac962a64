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


def economic(plan: Json) -> Json:
    spec = plan.get("economic") or {}
    if not spec.get("eq5d_value_set") or not spec.get("unit_costs"):
        return {
            "configured": False,
            "note": "Not configured: the trial has no EQ-5D-5L value set and no unit costs, so no QALYs, costs or ICER.",
        }
    # No trial configures them yet; a plan that has them needs this analysis written first.
    return {"configured": True, "note": "A value set and unit costs are given, but this version does not analyse them."}


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
    parts.append(f"<p>{e(results['economic']['note'])}</p>\n")
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
        "economic": economic(plan),
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
