"""Trial presets: configuration as data. WalkBack is the first; another two-arm trial is another preset."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArmSpec:
    code: str
    name: str
    ratio: int
    description: str = ""


@dataclass(frozen=True)
class LevelSpec:
    code: str
    label: str


@dataclass(frozen=True)
class FactorSpec:
    code: str
    label: str
    levels: tuple[LevelSpec, ...]


@dataclass(frozen=True)
class CriterionSpec:
    code: str
    text: str
    kind: str  # "inclusion" or "exclusion"


@dataclass(frozen=True)
class SiteSpec:
    code: str
    name: str
    timezone: str


@dataclass(frozen=True)
class ScheduleSpec:
    instrument: str
    kind: str  # "monthly" or "fixed"
    months: tuple[int, ...] = ()
    open_days_before: int = 0
    close_days_after: int = 14
    reminder_days: tuple[int, ...] = (3, 7)  # after the window opens; the invitation goes when it opens


@dataclass(frozen=True)
class SessionSpec:
    number: int
    name: str
    target_day: int  # days after randomisation
    window_before_days: int
    window_after_days: int
    modes: tuple[str, ...]
    sets_prescription: bool = False


@dataclass(frozen=True)
class TrialPreset:
    code: str
    name: str
    registration: str
    timezone: str
    recruitment_target: int
    recruitment_months: int
    followup_after_recruitment_months: int
    min_followup_months: int
    max_followup_months: int
    arms: tuple[ArmSpec, ...]
    strata: tuple[FactorSpec, ...]
    eligibility: tuple[CriterionSpec, ...]
    sites: tuple[SiteSpec, ...]
    study_id_prefix: str = "P"
    randomisation_method: str = "blocks"
    block_sizes: tuple[int, ...] = (4, 6, 8)
    minimisation_probability: str = "0.80"
    referral_factor: str = ""
    consent_version: str = "1.0"
    consent_title: str = "Participant information and consent form"
    schedule: tuple[ScheduleSpec, ...] = ()
    instruments: tuple[str, ...] = ()  # codes from presets.instrument_library
    baseline_before_randomisation: bool = False  # randomise only once the "baseline" questionnaire is complete
    intervention_arm: str = ""  # the arm whose participants have sessions and a diary
    sessions: tuple[SessionSpec, ...] = ()
    education_topics: tuple[tuple[str, str], ...] = ()
    ae_categories: tuple[tuple[str, str], ...] = (("other", "Other"),)
    role_overrides: dict[str, dict[str, bool]] = field(default_factory=dict)
