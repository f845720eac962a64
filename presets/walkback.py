"""The WalkBack trial (see shared docs: walkback-protocol.md): the defaults it ships with."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from presets.value_sets import AUSTRALIA_2023
from trial.presets import (
    ArmSpec,
    CriterionSpec,
    FactorSpec,
    LevelSpec,
    ScheduleSpec,
    SessionSpec,
    SiteSpec,
    TrialPreset,
)

WALKBACK = TrialPreset(
    code="walkback",
    name="WalkBack",
    registration="ACTRN12619001134112",
    timezone="Australia/Sydney",
    recruitment_target=701,
    # WalkBack recruited Sep 2019 - Jun 2022 (33 months); follow-up ended 12 months later.
    recruitment_months=33,
    followup_after_recruitment_months=12,
    min_followup_months=12,
    max_followup_months=36,
    arms=(
        ArmSpec(
            code="walking",
            name="Walking and education programme",
            ratio=1,
            description=(
                "Individualised, progressive walking programme with six physiotherapist-led education sessions over six months."
            ),
        ),
        ArmSpec(code="control", name="No intervention (control)", ratio=1, description="No study treatment."),
    ),
    strata=(
        FactorSpec(
            code="prior_episodes_gt2",
            label="More than two previous episodes of low back pain",
            levels=(LevelSpec("yes", "Yes"), LevelSpec("no", "No")),
        ),
        FactorSpec(
            code="referral",
            label="Referral method",
            levels=(
                LevelSpec("community", "Community advertising"),
                LevelSpec("clinician", "Clinician referral"),
            ),
        ),
    ),
    eligibility=(
        CriterionSpec("age_18_plus", "Aged 18 years or older", "inclusion"),
        CriterionSpec(
            "recent_episode",
            "An episode of non-specific low back pain that lasted at least 24 hours and interfered "
            "with daily activities, within the last 6 months",
            "inclusion",
        ),
        CriterionSpec("recovered", "Recovered from that episode at enrolment", "inclusion"),
        CriterionSpec("able_to_walk", "Able to walk", "inclusion"),
        CriterionSpec(
            "already_active",
            "Already walking for exercise, or doing other moderate-to-vigorous activity, 3 or more times a week",
            "exclusion",
        ),
        CriterionSpec("walking_prevented", "A condition that prevents walking", "exclusion"),
        CriterionSpec("recent_spinal_surgery", "Spinal surgery within the last 6 months", "exclusion"),
    ),
    sites=(
        SiteSpec("SYD", "Sydney CBD Physiotherapy", "Australia/Sydney"),
        SiteSpec("NCL", "Newcastle Physiotherapy", "Australia/Sydney"),
        SiteSpec("WOL", "Wollongong Physiotherapy", "Australia/Sydney"),
        SiteSpec("BNE", "Brisbane Northside Physiotherapy", "Australia/Brisbane"),
        SiteSpec("GCT", "Gold Coast Physiotherapy", "Australia/Brisbane"),
    ),
    study_id_prefix="WB",
    randomisation_method="blocks",
    block_sizes=(4, 6, 8),
    referral_factor="referral",
    schedule=(
        # Monthly recurrence questionnaire: open 3 days before it is due, for two weeks after.
        ScheduleSpec("monthly", "monthly", open_days_before=3, close_days_after=14),
        # Disability, quality of life, costs and activity at 3, 6, 9 and 12 months.
        ScheduleSpec("timepoint", "fixed", months=(3, 6, 9, 12), open_days_before=7, close_days_after=28),
    ),
    # The baseline questionnaire is asked once, at enrolment, and completed before randomisation.
    instruments=("baseline", "monthly", "timepoint"),
    baseline_before_randomisation=True,
    intervention_arm="walking",
    sessions=(
        # Sessions 1, 3 and 5 set the walking prescription; 2, 4 and 6 review progress and barriers.
        SessionSpec(1, "Baseline", 7, 7, 14, ("in_person", "video"), sets_prescription=True),
        SessionSpec(2, "Week 2 check-in", 14, 4, 7, ("phone",)),
        SessionSpec(3, "Month 1", 30, 7, 14, ("in_person", "video"), sets_prescription=True),
        SessionSpec(4, "Month 2 check-in", 60, 7, 14, ("phone",)),
        SessionSpec(5, "Month 3", 91, 14, 14, ("in_person", "video"), sets_prescription=True),
        SessionSpec(6, "Month 6 booster", 182, 14, 14, ("phone",)),
    ),
    education_topics=(
        ("pain_science", "Pain science: why back pain recurs"),
        ("fear", "Reducing fear of movement"),
        ("prevention", "Preventing recurrences"),
        ("flare_ups", "Self-managing minor flare-ups"),
        ("walking_goals", "Walking goals and progression"),
        ("barriers", "Barriers and problem solving"),
    ),
    ae_categories=(
        ("lower_extremity", "Lower extremity"),
        ("back", "Back"),
        ("other_msk", "Other musculoskeletal"),
        ("cardiovascular", "Cardiovascular"),
        ("other", "Other"),
    ),
    # Roles that read blinded data trial-wide, sign the lock or configure the trial sign in with a
    # second factor (TOTP or a recovery code).
    role_overrides={
        "investigator": {"requires_two_factor": True},
        "data_manager": {"requires_two_factor": True},
        "statistician": {"requires_two_factor": True},
        "admin": {"requires_two_factor": True},
    },
)

PRESETS: dict[str, TrialPreset] = {WALKBACK.code: WALKBACK}

# The economic evaluation (closeout.models.EconomicPolicy), set when the preset is first applied
# and edited in admin after that. Australian dollars at 2023 prices, of the order of the Medicare
# Benefits Schedule fee (GP), private fees (physiotherapist, chiropractor, specialist), a public
# emergency presentation and average daily earnings: placeholders for the trial's health economist
# to confirm before the analysis is read. Discounting at 5% a year (the PBAC's rate) only matters
# for a horizon longer than 12 months.
WALKBACK_ECONOMICS: dict[str, Any] = {
    "value_set": AUSTRALIA_2023,
    "currency": "AUD",
    "price_year": 2023,
    "care_unit_costs": {
        "gp": 42.85,
        "physiotherapist": 90.0,
        "chiropractor": 70.0,
        "emergency": 650.0,
        "specialist": 160.0,
        "other": 80.0,
    },
    "work_day_cost": Decimal("380.00"),
    "session_cost": Decimal("75.00"),
    "discount_rate": Decimal("0.05"),
    "horizon_months": 12,
    "wtp_threshold": Decimal("50000"),
}

ECONOMICS: dict[str, dict[str, Any]] = {WALKBACK.code: WALKBACK_ECONOMICS}
