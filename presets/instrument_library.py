"""WalkBack's questionnaires as data (the format is described in ``followup.instruments``).

- ``BASELINE``: once, at enrolment (entered by staff or answered through the participant's link):
  demographics, body size, back-pain history, pain, Roland-Morris, EQ-5D-5L, walking and activity.
- ``MONTHLY`` (``MONTHLY_EPISODES``, version 2): every month from randomisation, both arms; each
  episode of back pain since the last questionnaire (up to ``EPISODES_MAX``), its impact and care,
  and adverse events. ``MONTHLY_V1`` asked about the first episode only. Answers stay stored against
  the version asked (a trial that published version 1 gets version 2 when the preset is applied
  again, and each questionnaire uses the version current when it opened); ``followup.outcomes.episodes``
  reads a version-1 answer as one episode, which is how existing answers are migrated.
- ``TIMEPOINT``: at 3, 6, 9 and 12 months; Roland-Morris, EQ-5D-5L, health-care use, walking.

Changing a question's meaning means a new ``version``: answers are stored against the version asked.
"""

from __future__ import annotations

from typing import Any

Definition = dict[str, Any]

SINCE_LAST = {"item": "lbp_24h", "equals": True}


def _yes_no(code: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "text": text, "type": "yes_no", "required": True, **extra}


def _integer(code: str, text: str, low: int, high: int, **extra: Any) -> dict[str, Any]:
    return {"code": code, "text": text, "type": "integer", "min": low, "max": high, "required": True, **extra}


def _choice(code: str, text: str, choices: list[list[Any]], **extra: Any) -> dict[str, Any]:
    return {"code": code, "text": text, "type": "choice", "choices": choices, "required": True, **extra}


# The primary outcome counts level 2 ("Somewhat") or more as activity-limiting.
INTERFERENCE_CHOICES = [
    [0, "Not at all"],
    [1, "A little bit"],
    [2, "Somewhat"],
    [3, "Quite a bit"],
    [4, "Extremely"],
]

CARE_CHOICES = [
    ["gp", "General practitioner (GP)"],
    ["physiotherapist", "Physiotherapist"],
    ["chiropractor", "Chiropractor"],
    ["emergency", "Hospital emergency department"],
    ["specialist", "Medical specialist"],
    ["other", "Someone else"],
]

MONTHLY_V1: Definition = {
    "code": "monthly",
    "version": "1",
    "title": "Monthly back pain questionnaire",
    "intro": "These questions are about your lower back since your last questionnaire, about a month ago. "
    "It takes about two minutes.",
    "items": [
        _yes_no("lbp_24h", "Since your last questionnaire, have you had any low back pain that lasted 24 hours or more?"),
        {
            "code": "lbp_start",
            "text": "When did this back pain start?",
            "help": "If you had more than one episode, give the date the first one started.",
            "type": "date",
            "required": True,
            "show_if": SINCE_LAST,
        },
        _choice(
            "interference",
            "How much did this back pain interfere with your usual daily activities "
            "(including work outside the home and housework)?",
            INTERFERENCE_CHOICES,
            show_if=SINCE_LAST,
        ),
        _integer(
            "pain_avg",
            "On average, how bad was this back pain? (0 = no pain, 10 = worst pain imaginable)",
            0,
            10,
            show_if=SINCE_LAST,
        ),
        _integer(
            "pain_worst",
            "At its worst, how bad was this back pain? (0 = no pain, 10 = worst pain imaginable)",
            0,
            10,
            show_if=SINCE_LAST,
        ),
        _yes_no("care_sought", "Did you seek care from a health professional for this back pain?", show_if=SINCE_LAST),
        {
            "code": "care_from",
            "text": "Who did you see for this back pain?",
            "help": "Choose all that apply.",
            "type": "multi_choice",
            "choices": CARE_CHOICES,
            "required": True,
            "show_if": {"item": "care_sought", "equals": True},
        },
        {
            "code": "care_from_other",
            "text": "Who else did you see?",
            "type": "text",
            "max_length": 200,
            "required": False,
            "show_if": {"item": "care_from", "in": ["other"]},
        },
        _integer(
            "work_days_missed",
            "How many days of work (paid or unpaid) did you miss because of this back pain?",
            0,
            31,
            help="Enter 0 if you missed none.",
            show_if=SINCE_LAST,
        ),
        {
            "code": "recovered_on",
            "text": "On what date did you recover from this back pain?",
            "help": "Leave this blank if you have not recovered yet.",
            "type": "date",
            "required": False,
            "show_if": SINCE_LAST,
        },
        _yes_no(
            "new_health_problem",
            "Have you had any new health problems since your last questionnaire?",
            help="For example an injury, an illness, or pain anywhere in your body.",
        ),
        {
            "code": "new_health_problem_details",
            "text": "Please describe the new health problem(s): what happened, when it started, and whether it has gone.",
            "type": "text",
            "max_length": 2000,
            "required": True,
            "show_if": {"item": "new_health_problem", "equals": True},
        },
    ],
    "scores": [
        {"code": "recurrence", "method": "value", "items": ["lbp_24h"]},
    ],
}

# Version 2 of the monthly questionnaire: each episode since the last questionnaire, so the
# primary event is dated by the first episode that meets its definition, and two mild episodes in a
# month are never merged into one activity-limiting answer. Item codes: ``ep{n}_<field>``.
EPISODES_MAX = 3
EPISODE_FIELDS = (
    "start",
    "24h",
    "interference",
    "pain_avg",
    "pain_worst",
    "care_sought",
    "care_from",
    "care_from_other",
    "work_days_missed",
    "recovered_on",
    "more",
)
_ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def episode_items(number: int, *, last: bool) -> list[dict[str, Any]]:
    """The questions about one episode; the first is asked when there was any back pain, each
    later one when the participant said there was another."""
    shown = {"item": "lbp_any", "equals": True} if number == 1 else {"item": f"ep{number - 1}_more", "equals": True}
    prefix = f"ep{number}_"
    which = _ORDINAL.get(number, str(number))
    items: list[dict[str, Any]] = [
        {
            "code": f"{prefix}start",
            "text": f"Episode {number}: when did the {which} episode of back pain since your last questionnaire start?",
            "help": "If you are not sure of the day, give your best guess.",
            "type": "date",
            "required": True,
            "show_if": shown,
        },
        _yes_no(f"{prefix}24h", f"Episode {number}: did this back pain last 24 hours or more?", show_if=shown),
        _choice(
            f"{prefix}interference",
            f"Episode {number}: how much did this back pain interfere with your usual daily activities "
            "(including work outside the home and housework)?",
            INTERFERENCE_CHOICES,
            show_if=shown,
        ),
        _integer(
            f"{prefix}pain_avg",
            f"Episode {number}: on average, how bad was this back pain? (0 = no pain, 10 = worst pain imaginable)",
            0,
            10,
            show_if=shown,
        ),
        _integer(
            f"{prefix}pain_worst",
            f"Episode {number}: at its worst, how bad was this back pain? (0 = no pain, 10 = worst pain imaginable)",
            0,
            10,
            show_if=shown,
        ),
        _yes_no(
            f"{prefix}care_sought",
            f"Episode {number}: did you seek care from a health professional for this back pain?",
            show_if=shown,
        ),
        {
            "code": f"{prefix}care_from",
            "text": f"Episode {number}: who did you see for this back pain?",
            "help": "Choose all that apply.",
            "type": "multi_choice",
            "choices": CARE_CHOICES,
            "required": True,
            "show_if": {"item": f"{prefix}care_sought", "equals": True},
        },
        {
            "code": f"{prefix}care_from_other",
            "text": f"Episode {number}: who else did you see?",
            "type": "text",
            "max_length": 200,
            "required": False,
            "show_if": {"item": f"{prefix}care_from", "in": ["other"]},
        },
        _integer(
            f"{prefix}work_days_missed",
            f"Episode {number}: how many days of work (paid or unpaid) did you miss because of this back pain?",
            0,
            31,
            help="Enter 0 if you missed none.",
            show_if=shown,
        ),
        {
            "code": f"{prefix}recovered_on",
            "text": f"Episode {number}: on what date did you recover from this back pain?",
            "help": "Leave this blank if you have not recovered yet.",
            "type": "date",
            "required": False,
            "show_if": shown,
        },
    ]
    if not last:
        items.append(
            _yes_no(
                f"{prefix}more",
                f"After episode {number}, did you have another, separate episode of back pain since your last questionnaire?",
                help="A separate episode starts after you had recovered from the one before.",
                show_if=shown,
            )
        )
    return items


MONTHLY_EPISODES: Definition = {
    "code": "monthly",
    "version": "2",
    "title": "Monthly back pain questionnaire",
    "intro": "These questions are about your lower back since your last questionnaire, about a month ago. "
    "If you had back pain, we ask about each episode separately. It takes about two minutes.",
    "items": [
        _yes_no(
            "lbp_any",
            "Since your last questionnaire, have you had any episode of low back pain?",
            help="Count any back pain, however short. We ask how long it lasted next.",
        ),
        *(item for number in range(1, EPISODES_MAX + 1) for item in episode_items(number, last=number == EPISODES_MAX)),
        _yes_no(
            "new_health_problem",
            "Have you had any new health problems since your last questionnaire?",
            help="For example an injury, an illness, or pain anywhere in your body.",
        ),
        {
            "code": "new_health_problem_details",
            "text": "Please describe the new health problem(s): what happened, when it started, and whether it has gone.",
            "type": "text",
            "max_length": 2000,
            "required": True,
            "show_if": {"item": "new_health_problem", "equals": True},
        },
    ],
    "scores": [
        {"code": "back_pain", "method": "value", "items": ["lbp_any"], "label": "Any back pain since the last questionnaire"},
    ],
}

# Roland MO, Morris RW. Spine 1983;8:141-4: 24 statements, each scored 1 if it describes the person today.
RMDQ_STATEMENTS = [
    "I stay at home most of the time because of my back.",
    "I change position frequently to try and get my back comfortable.",
    "I walk more slowly than usual because of my back.",
    "Because of my back, I am not doing any of the jobs that I usually do around the house.",
    "Because of my back, I use a handrail to get upstairs.",
    "Because of my back, I lie down to rest more often.",
    "Because of my back, I have to hold on to something to get out of an easy chair.",
    "Because of my back, I try to get other people to do things for me.",
    "I get dressed more slowly than usual because of my back.",
    "I only stand for short periods of time because of my back.",
    "Because of my back, I try not to bend or kneel down.",
    "I find it difficult to get out of a chair because of my back.",
    "My back is painful almost all the time.",
    "I find it difficult to turn over in bed because of my back.",
    "My appetite is not very good because of my back pain.",
    "I have trouble putting on my socks (or stockings) because of the pain in my back.",
    "I only walk short distances because of my back.",
    "I sleep less well because of my back.",
    "Because of my back pain, I get dressed with help from someone else.",
    "I sit down for most of the day because of my back.",
    "I avoid heavy jobs around the house because of my back.",
    "Because of my back pain, I am more irritable and bad tempered with people than usual.",
    "Because of my back, I go upstairs more slowly than usual.",
    "I stay in bed most of the time because of my back.",
]
RMDQ_CODES = [f"rmdq_{number:02d}" for number in range(1, len(RMDQ_STATEMENTS) + 1)]

# EQ-5D-5L (EuroQol Research Foundation): using it in a study needs registration with EuroQol.
EQ5D_DIMENSIONS: list[tuple[str, str, list[str]]] = [
    (
        "eq5d_mobility",
        "Mobility",
        [
            "I have no problems in walking about",
            "I have slight problems in walking about",
            "I have moderate problems in walking about",
            "I have severe problems in walking about",
            "I am unable to walk about",
        ],
    ),
    (
        "eq5d_selfcare",
        "Self-care",
        [
            "I have no problems washing or dressing myself",
            "I have slight problems washing or dressing myself",
            "I have moderate problems washing or dressing myself",
            "I have severe problems washing or dressing myself",
            "I am unable to wash or dress myself",
        ],
    ),
    (
        "eq5d_activities",
        "Usual activities (e.g. work, study, housework, family or leisure activities)",
        [
            "I have no problems doing my usual activities",
            "I have slight problems doing my usual activities",
            "I have moderate problems doing my usual activities",
            "I have severe problems doing my usual activities",
            "I am unable to do my usual activities",
        ],
    ),
    (
        "eq5d_pain",
        "Pain / discomfort",
        [
            "I have no pain or discomfort",
            "I have slight pain or discomfort",
            "I have moderate pain or discomfort",
            "I have severe pain or discomfort",
            "I have extreme pain or discomfort",
        ],
    ),
    (
        "eq5d_anxiety",
        "Anxiety / depression",
        [
            "I am not anxious or depressed",
            "I am slightly anxious or depressed",
            "I am moderately anxious or depressed",
            "I am severely anxious or depressed",
            "I am extremely anxious or depressed",
        ],
    ),
]
EQ5D_CODES = [code for code, _title, _levels in EQ5D_DIMENSIONS]


def disability_and_quality_of_life_items() -> list[dict[str, Any]]:
    """Roland-Morris (24 statements), the EQ-5D-5L dimensions and the EQ VAS, asked about today."""
    return [
        *(
            _yes_no(
                code,
                statement,
                help="When your back hurts, you may find it difficult to do some of the things you normally do. "
                "Answer yes only if you are sure this sentence describes you today.",
            )
            for code, statement in zip(RMDQ_CODES, RMDQ_STATEMENTS, strict=True)
        ),
        *(
            _choice(
                code,
                title,
                [[level, label] for level, label in enumerate(labels, start=1)],
                help="Choose the ONE answer that best describes your health TODAY.",
            )
            for code, title, labels in EQ5D_DIMENSIONS
        ),
        _integer(
            "eq5d_vas",
            "We would like to know how good or bad your health is TODAY. "
            "On a scale from 0 to 100, where 100 means the best health you can imagine and 0 means the worst "
            "health you can imagine, what number shows how your health is TODAY?",
            0,
            100,
        ),
    ]


VISIT_ITEMS = [
    ("visits_gp", "a general practitioner (GP)"),
    ("visits_physio", "a physiotherapist"),
    ("visits_specialist", "a medical specialist"),
    ("visits_emergency", "a hospital emergency department"),
]

TIMEPOINT: Definition = {
    "code": "timepoint",
    "version": "1",
    "title": "Three-monthly questionnaire",
    "intro": "This questionnaire asks about how your back affects you today, your health today, "
    "the care you have had for your back in the past 3 months, and how much you walk. "
    "It takes about ten minutes.",
    "items": [
        *disability_and_quality_of_life_items(),
        *(
            _integer(code, f"In the past 3 months, how many times did you visit {who} because of your back?", 0, 100)
            for code, who in VISIT_ITEMS
        ),
        _yes_no("hospital_admission", "In the past 3 months, were you admitted to hospital because of your back?"),
        _integer(
            "walking_minutes_week",
            "In a usual week over the past month, how many minutes in total did you spend walking?",
            0,
            5000,
            help="Count walks of 10 minutes or more: for exercise, for transport, or for fun. Enter 0 if none.",
        ),
    ],
    "scores": [
        {"code": "rmdq_total", "method": "count_true", "items": RMDQ_CODES, "label": "Roland-Morris disability (0-24)"},
        {"code": "eq5d_profile", "method": "concat", "items": EQ5D_CODES, "label": "EQ-5D-5L health profile"},
        {"code": "eq5d_vas", "method": "value", "items": ["eq5d_vas"], "label": "EQ VAS (0-100)"},
        {
            "code": "healthcare_visits",
            "method": "sum",
            "items": [code for code, _who in VISIT_ITEMS],
            "label": "Back-related health-care visits in the past 3 months",
        },
        {
            "code": "walking_minutes_week",
            "method": "value",
            "items": ["walking_minutes_week"],
            "label": "Walking minutes per week",
        },
    ],
}

SEX_CHOICES = [["female", "Female"], ["male", "Male"], ["other", "Another term"], ["not_stated", "Prefer not to say"]]
EDUCATION_CHOICES = [
    ["school_no_year_12", "Did not finish high school"],
    ["school_year_12", "Finished high school"],
    ["trade", "Trade certificate or apprenticeship"],
    ["diploma", "Diploma"],
    ["degree", "University degree"],
    ["postgraduate", "Postgraduate degree"],
]
EMPLOYMENT_CHOICES = [
    ["full_time", "Working full time"],
    ["part_time", "Working part time or casual"],
    ["self_employed", "Self-employed"],
    ["unemployed", "Looking for work"],
    ["home_duties", "Home duties or caring"],
    ["student", "Studying"],
    ["retired", "Retired"],
    ["unable", "Unable to work because of illness or disability"],
]
EPISODE_DURATION_CHOICES = [
    ["lt_1w", "Less than a week"],
    ["1_4w", "1 to 4 weeks"],
    ["1_3m", "1 to 3 months"],
    ["gt_3m", "More than 3 months"],
]

# The baseline questionnaire. ``date_of_birth`` is identifying: a release carries only the age in
# whole years at randomisation (``age_years``), and the body mass index from height and weight.
BASELINE: Definition = {
    "code": "baseline",
    "version": "1",
    "title": "Baseline questionnaire",
    "intro": "These questions are about you, your back and your health before the study starts. It takes about ten minutes.",
    "items": [
        {"code": "date_of_birth", "text": "What is your date of birth?", "type": "date", "required": True},
        _choice("sex", "What is your sex?", SEX_CHOICES),
        {
            "code": "height_cm",
            "text": "How tall are you, in centimetres?",
            "type": "number",
            "min": 100,
            "max": 250,
            "required": True,
        },
        {
            "code": "weight_kg",
            "text": "How much do you weigh, in kilograms?",
            "type": "number",
            "min": 30,
            "max": 300,
            "required": True,
        },
        _choice("education", "What is the highest level of education you have finished?", EDUCATION_CHOICES),
        _choice("employment", "Which best describes your work now?", EMPLOYMENT_CHOICES),
        _integer(
            "lbp_previous_episodes",
            "Before your most recent episode, how many episodes of low back pain have you had in your life?",
            0,
            200,
            help="Count episodes that lasted 24 hours or more. Enter 0 if the most recent one was your first.",
        ),
        _choice(
            "lbp_episode_duration",
            "How long did your episodes of low back pain usually last?",
            EPISODE_DURATION_CHOICES,
        ),
        _integer(
            "lbp_weeks_since_recovery",
            "How many weeks ago did you recover from your most recent episode of low back pain?",
            0,
            52,
            help="Enter 0 if it was less than a week ago.",
        ),
        _integer("pain_now", "How bad is your back pain today? (0 = no pain, 10 = worst pain imaginable)", 0, 10),
        _integer(
            "pain_week_avg",
            "On average, how bad was your back pain over the past week? (0 = no pain, 10 = worst pain imaginable)",
            0,
            10,
        ),
        *disability_and_quality_of_life_items(),
        _integer(
            "walking_minutes_week",
            "In a usual week over the past month, how many minutes in total did you spend walking?",
            0,
            5000,
            help="Count walks of 10 minutes or more: for exercise, for transport, or for fun. Enter 0 if none.",
        ),
        _integer(
            "active_days_week",
            "In the past week, on how many days did you do at least 30 minutes of moderate or vigorous physical "
            "activity (activity that makes you breathe harder than normal)?",
            0,
            7,
        ),
    ],
    "scores": [
        {"code": "rmdq_total", "method": "count_true", "items": RMDQ_CODES, "label": "Roland-Morris disability (0-24)"},
        {"code": "eq5d_profile", "method": "concat", "items": EQ5D_CODES, "label": "EQ-5D-5L health profile"},
        {"code": "eq5d_vas", "method": "value", "items": ["eq5d_vas"], "label": "EQ VAS (0-100)"},
        {
            "code": "walking_minutes_week",
            "method": "value",
            "items": ["walking_minutes_week"],
            "label": "Walking minutes per week",
        },
    ],
}

MONTHLY = MONTHLY_EPISODES  # the version a trial publishes now

LIBRARY: dict[str, Definition] = {definition["code"]: definition for definition in (BASELINE, MONTHLY, TIMEPOINT)}
