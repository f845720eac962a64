"""The statistical analysis plan a release carries (``analysis/plan.json``), read from the trial's
configuration: arms, strata, outcomes, scores and adverse-event categories come from the catalogue's
Config, so another two-arm trial needs no code. ``analysis/analyse.py`` (closeout.releases.analyse,
which imports nothing of this project) runs it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from closeout.models import EconomicPolicy
from closeout.releases import analyse, catalogue
from closeout.releases.catalogue import Config, Table
from followup.models import OutcomeCode
from intervention.models import SessionStatus

ALPHA = 0.05
PRIMARY = OutcomeCode.ACTIVITY_LIMITING
# Scores analysed with a mixed model over the follow-up timepoints, adjusted for their baseline value.
REPEATED = ("rmdq_total", "eq5d_vas")
AE_STATUSES_LEFT_OUT = ("dismissed",)  # reviewed and found not to be an adverse event
EQ5D_PROFILE = "eq5d_profile"  # the score that concatenates the five EQ-5D-5L levels, e.g. "11213"
NOT_CONFIGURED = {"eq5d_value_set": None, "unit_costs": None}


def _arm(config: Config) -> dict[str, Any] | None:
    """The arms compared: the intervention policy's arm against the one other arm (two-arm trials)."""
    if config.blinded or len(config.arms) != 2 or config.intervention_arm not in dict(config.arms):
        return None
    codes = [code for code, _ in config.arms]
    control = next(code for code in codes if code != config.intervention_arm)
    return {
        "column": "arm",
        "codes": codes,
        "labels": dict(config.arms),
        "intervention": config.intervention_arm,
        "control": control,
    }


def _baseline(analysis: Table) -> list[dict[str, Any]]:
    """Table 1's variables: site, strata and the baseline covariates of analysis.csv."""
    strata_and_site = {column.name for column in analysis.columns if column.label.startswith("Stratum: ")} | {"site"}
    wanted = strata_and_site | set(catalogue.ANALYSIS_COVARIATES)
    variables: list[dict[str, Any]] = []
    for column in analysis.columns:
        if column.name not in wanted or column.multiple:
            continue
        if column.codes:
            codes = [[code, label] for code, label in column.codes]
            variables.append({"column": column.name, "label": column.label, "kind": "categorical", "codes": codes})
        elif column.type in ("integer", "number"):
            label = column.label + (f" ({column.units})" if column.units and column.units not in column.label else "")
            variables.append({"column": column.name, "label": label, "kind": "continuous"})
    return variables


def _repeated(config: Config, analysis: Table) -> list[dict[str, Any]]:
    baseline = {column.name for column in analysis.columns}
    scores = {column.name: column for column in catalogue.score_columns(config)}
    measures = []
    for code in REPEATED:
        instrument = next((i for i in config.instruments if any(score.code == code for score in i.scores)), None)
        if instrument is None or code not in baseline:
            continue
        label = next(score.label for score in instrument.scores if score.code == code)
        points = [
            {"month": month, "column": name}
            for month in instrument.months
            if (name := catalogue.varname(f"{code}_m{month:02d}")) in scores
        ]
        if points:
            measures.append({"code": code, "label": label, "baseline": code, "timepoints": points})
    return measures


def _number(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


def _economic(config: Config) -> dict[str, Any]:
    """The cost-effectiveness analysis (closeout.models.EconomicPolicy): the value set, the unit
    costs, and where the release has the EQ-5D-5L profiles, the care and the sessions. Without a
    value set or care unit costs, or without EQ-5D-5L profiles to value: not configured."""
    policy = EconomicPolicy.objects.filter(trial_id=config.trial_id).first()
    if policy is None or not policy.configured:
        return dict(NOT_CONFIGURED)
    horizon = policy.horizon_months
    scores = {column.name for column in catalogue.score_columns(config)}
    instrument = next((i for i in config.instruments if any(score.code == EQ5D_PROFILE for score in i.scores)), None)
    baseline = config.baseline
    if instrument is None or baseline is None or not any(score.code == EQ5D_PROFILE for score in baseline.scores):
        return dict(NOT_CONFIGURED)
    timepoints = []
    for month in instrument.months:
        if month > horizon:
            continue
        for stem in (EQ5D_PROFILE, f"{instrument.code}_{EQ5D_PROFILE}"):
            if (name := catalogue.varname(f"{stem}_m{month:02d}")) in scores:
                timepoints.append({"month": month, "column": name})
                break
    monthly = next((i for i in config.instruments if i.code == config.outcome_instrument), None)
    answered = [
        {"month": month, "column": name}
        for month in (monthly.months if monthly else ())
        if month <= horizon and (name := catalogue.varname(f"{config.outcome_instrument}_day_m{month:02d}")) in scores
    ]
    sessions = None
    if not config.blinded and policy.session_cost is not None:
        sessions = {"file": "sessions.csv", "status": "status", "counted": [SessionStatus.ATTENDED.value], "day": "session_day"}
    return {
        "eq5d_value_set": policy.value_set,
        "unit_costs": {
            "care": {str(code): float(cost) for code, cost in sorted(policy.care_unit_costs.items())},
            "work_day": _number(policy.work_day_cost),
            "session": _number(policy.session_cost),
        },
        "currency": policy.currency,
        "price_year": policy.price_year,
        "discount_rate": float(policy.discount_rate),
        "horizon_months": horizon,
        "wtp_threshold": float(policy.wtp_threshold),
        "bootstrap": {"resamples": policy.bootstrap_resamples, "seed": policy.bootstrap_seed},
        "utility": {
            "baseline": {"file": "baseline.csv", "column": catalogue.varname(EQ5D_PROFILE)},
            "timepoints": timepoints,
        },
        "care": {
            "file": "episodes.csv",
            "month": "month",
            "care_sought": "care_sought",
            "care_from": "care_from",
            "work_days": "work_days_missed",
            "separator": catalogue.ITEM_SEPARATOR,
            # Care is known for a participant who answered every one of these questionnaires.
            "answered": answered,
        },
        "sessions": sessions,
    }


def plan_build(*, config: Config, trial_name: str, lock_version: int, variant: str, packages: dict[str, str]) -> dict[str, Any]:
    analysis = catalogue.analysis_table(config)
    outcomes = []
    for code in OutcomeCode.values:
        name = catalogue.varname(code)
        label = catalogue.OUTCOME_LABELS[OutcomeCode(code)].removesuffix(" (primary)")
        outcomes.append(
            {
                "code": name,
                "label": label[0].upper() + label[1:],
                "days": f"{name}_days",
                "event": f"{name}_event",
                "primary": code == PRIMARY,
            }
        )
    return {
        "trial": trial_name,
        "lock_version": lock_version,
        "variant": variant,
        "alpha": ALPHA,
        "population": "itt",
        "files": {
            "analysis": "analysis.csv",
            "scores": "questionnaire_scores.csv",
            "adverse_events": "adverse_events.csv",
        },
        "arm": _arm(config),
        "strata": [factor.name for factor in config.factors],
        "outcomes": outcomes,
        "baseline": _baseline(analysis),
        "repeated": _repeated(config, analysis),
        "adverse_events": {
            "status": "status",
            "statuses_left_out": list(AE_STATUSES_LEFT_OUT),
            "category": "category",
            "categories": [[code, label] for code, label in config.ae_categories],
            "serious": "serious",
        },
        "economic": _economic(config),
        "packages": packages,
    }


def packages_installed() -> dict[str, str]:
    return analyse.installed_versions()
