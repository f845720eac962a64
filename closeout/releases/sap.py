"""The statistical analysis plan a release carries (``analysis/plan.json``), read from the trial's
configuration: arms, strata, outcomes, scores and adverse-event categories come from the catalogue's
Config, so another two-arm trial needs no code. ``analysis/analyse.py`` (closeout.releases.analyse,
which imports nothing of this project) runs it."""

from __future__ import annotations

from typing import Any

from closeout.releases import analyse, catalogue
from closeout.releases.catalogue import Config, Table
from followup.models import OutcomeCode

ALPHA = 0.05
PRIMARY = OutcomeCode.ACTIVITY_LIMITING
# Scores analysed with a mixed model over the follow-up timepoints, adjusted for their baseline value.
REPEATED = ("rmdq_total", "eq5d_vas")
AE_STATUSES_LEFT_OUT = ("dismissed",)  # reviewed and found not to be an adverse event


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
        # Neither is configurable yet (WalkBack's configuration has neither): the analysis says so.
        "economic": {"eq5d_value_set": None, "unit_costs": None},
        "packages": packages,
    }


def packages_installed() -> dict[str, str]:
    return analyse.installed_versions()
