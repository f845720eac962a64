"""The questionnaire engine and WalkBack's instruments (pure functions, no database)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followup.instruments import DefinitionError, clean_answers, progress, score, validate_definition, visible_items
from followup.outcomes import episodes
from presets.instrument_library import EQ5D_CODES, LIBRARY, MONTHLY_EPISODES, RMDQ_CODES, TIMEPOINT
from presets.instrument_library import MONTHLY_V1 as MONTHLY  # the engine's tests: version 1 exercises every rule
from tests.monthly import episode
from tests.monthly import monthly as monthly_episodes

ANSWER_THIS = "Please answer this question."


def small_definition() -> dict[str, Any]:
    return {
        "code": "small",
        "version": "1",
        "title": "Small",
        "items": [
            {"code": "pain", "text": "Any pain?", "type": "yes_no", "required": True},
            {
                "code": "level",
                "text": "How bad?",
                "type": "integer",
                "min": 0,
                "max": 10,
                "required": True,
                "show_if": {"item": "pain", "equals": True},
            },
            {
                "code": "kind",
                "text": "Kind?",
                "type": "choice",
                "choices": [["dull", "Dull"], ["sharp", "Sharp"]],
                "required": False,
            },
            {"code": "where", "text": "Where?", "type": "multi_choice", "choices": [[1, "Back"], [2, "Leg"]], "required": False},
            {"code": "weight", "text": "Weight (kg)?", "type": "number", "min": 30, "max": 250.5, "required": False},
            {"code": "note", "text": "Anything else?", "type": "text", "max_length": 10, "required": False},
            {"code": "on", "text": "When?", "type": "date", "required": False, "show_if": {"item": "level", "in": [8, 9, 10]}},
        ],
        "scores": [{"code": "level_value", "method": "value", "items": ["level"]}],
    }


def monthly_yes(**overrides: Any) -> dict[str, Any]:
    """A complete monthly questionnaire, with back pain, as an HTML form posts it."""
    raw: dict[str, Any] = {
        "lbp_24h": "yes",
        "lbp_start": "2026-03-01",
        "interference": "2",
        "pain_avg": "4",
        "pain_worst": "7",
        "care_sought": "yes",
        "care_from": ["physiotherapist", "gp"],
        "work_days_missed": "3",
        "recovered_on": "2026-03-09",
        "new_health_problem": "no",
    }
    raw.update(overrides)
    return raw


# --- validate_definition ---------------------------------------------------------------------


def test_a_well_formed_definition_is_valid() -> None:
    validate_definition(definition=small_definition())


def test_every_library_instrument_is_valid_and_filed_under_its_code() -> None:
    assert set(LIBRARY) == {"baseline", "monthly", "timepoint"}
    for code, definition in LIBRARY.items():
        assert definition["code"] == code
        validate_definition(definition=definition)


def test_library_instruments_survive_a_json_round_trip_unchanged() -> None:
    for definition in LIBRARY.values():
        stored = json.loads(json.dumps(definition))
        validate_definition(definition=stored)
        raw = (
            monthly_episodes(episode("2026-03-01", care_from=("gp",)), episode("2026-03-12", lasted_24h=False))
            if definition is MONTHLY_EPISODES
            else {code: "yes" for code in RMDQ_CODES}
        )
        assert clean_answers(definition=stored, raw=raw) == clean_answers(definition=definition, raw=raw)


def _item(definition: dict[str, Any], code: str) -> dict[str, Any]:
    return next(item for item in definition["items"] if item["code"] == code)


def _broken(change: str) -> dict[str, Any]:
    definition = small_definition()
    items = definition["items"]
    match change:
        case "unknown type":
            _item(definition, "kind")["type"] = "slider"
        case "duplicate item code":
            items.append({"code": "pain", "text": "Again?", "type": "yes_no"})
        case "choice without choices":
            del _item(definition, "kind")["choices"]
        case "multi_choice with empty choices":
            _item(definition, "where")["choices"] = []
        case "duplicate choice values":
            _item(definition, "kind")["choices"] = [["dull", "Dull"], ["dull", "Also dull"]]
        case "mixed choice value types":
            _item(definition, "kind")["choices"] = [["dull", "Dull"], [2, "Sharp"]]
        case "min greater than max":
            _item(definition, "level")["min"] = 11
        case "fractional bound on an integer":
            _item(definition, "level")["max"] = 10.5
        case "show_if on a later item":
            _item(definition, "level")["show_if"] = {"item": "kind", "equals": "dull"}
        case "show_if on itself":
            _item(definition, "level")["show_if"] = {"item": "level", "equals": 1}
        case "show_if on an unknown item":
            _item(definition, "level")["show_if"] = {"item": "ache", "equals": True}
        case "show_if naming a list":
            _item(definition, "level")["show_if"] = {"item": ["pain"], "equals": True}
        case "show_if value that cannot be an answer":
            _item(definition, "level")["show_if"] = {"item": "pain", "equals": "yes"}
        case "show_if with both equals and in":
            _item(definition, "level")["show_if"] = {"item": "pain", "equals": True, "in": [True]}
        case "score on an unknown item":
            definition["scores"].append({"code": "total", "method": "sum", "items": ["level", "ache"]})
        case "score with an unknown method":
            definition["scores"].append({"code": "total", "method": "mean", "items": ["level"]})
        case "count_true over a non yes/no item":
            definition["scores"].append({"code": "total", "method": "count_true", "items": ["level"]})
        case "value over two items":
            definition["scores"].append({"code": "total", "method": "value", "items": ["level", "weight"]})
        case "duplicate score code":
            definition["scores"].append({"code": "level_value", "method": "value", "items": ["weight"]})
        case "misspelt key":
            _item(definition, "level")["showif"] = {"item": "pain", "equals": True}
        case "code that cannot be a column":
            _item(definition, "note")["code"] = "Note 1"
        case "not JSON-serialisable":
            _item(definition, "kind")["choices"] = {("dull", "Dull")}
        case "missing version":
            del definition["version"]
    return definition


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("unknown type", "unknown type 'slider'"),
        ("duplicate item code", "item 'pain': duplicate item code"),
        ("choice without choices", "item 'kind': a choice item needs a non-empty list"),
        ("multi_choice with empty choices", "item 'where': a choice item needs a non-empty list"),
        ("duplicate choice values", "choice values must be unique"),
        ("mixed choice value types", "all integers or all strings"),
        ("min greater than max", "item 'level': min 11 is greater than max 10"),
        ("fractional bound on an integer", "max 10.5 is not a whole number"),
        ("show_if on a later item", "show_if refers to 'kind', which is not an earlier item"),
        ("show_if on itself", "show_if refers to 'level', which is not an earlier item"),
        ("show_if on an unknown item", "show_if refers to unknown item 'ache'"),
        ("show_if naming a list", "show_if refers to unknown item ['pain']"),
        ("show_if value that cannot be an answer", "show_if value 'yes' is not a possible answer to 'pain'"),
        ("show_if with both equals and in", 'exactly one of "equals" or "in"'),
        ("score on an unknown item", "score 'total': refers to unknown item 'ache'"),
        ("score with an unknown method", "score 'total': unknown method 'mean'"),
        ("count_true over a non yes/no item", "count_true cannot use 'level', a integer item"),
        ("value over two items", "the value method takes exactly one item"),
        ("duplicate score code", "score 'level_value': duplicate score code"),
        ("misspelt key", "unknown key 'showif'"),
        ("code that cannot be a column", "code 'Note 1' must be lower-case"),
        ("not JSON-serialisable", "not JSON-serialisable"),
        ("missing version", "version must be a non-empty string"),
    ],
)
def test_validate_definition_names_the_problem(change: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=re.escape(message)) as raised:
        validate_definition(definition=_broken(change))
    assert isinstance(raised.value, ValueError)


# --- skip logic ------------------------------------------------------------------------------


def test_when_there_was_no_back_pain_only_the_pain_and_health_questions_are_shown() -> None:
    shown = visible_items(definition=MONTHLY, answers={"lbp_24h": False})
    assert [item["code"] for item in shown] == ["lbp_24h", "new_health_problem"]


def test_visible_items_reads_raw_form_values_like_clean_ones() -> None:
    as_text = [item["code"] for item in visible_items(definition=MONTHLY, answers={"lbp_24h": "yes", "care_sought": "1"})]
    typed = [item["code"] for item in visible_items(definition=MONTHLY, answers={"lbp_24h": True, "care_sought": True})]
    assert as_text == typed
    assert "care_from" in typed and "lbp_start" in typed


def test_answers_to_hidden_follow_up_questions_are_dropped() -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw=monthly_yes(lbp_24h="no"))
    assert errors == {}
    assert clean == {"lbp_24h": False, "new_health_problem": False}


def test_a_question_is_hidden_when_the_question_it_depends_on_is_hidden() -> None:
    # care_sought says yes, but care_sought itself is hidden because there was no back pain.
    shown = visible_items(definition=MONTHLY, answers={"lbp_24h": "no", "care_sought": "yes", "care_from": ["gp"]})
    assert "care_from" not in [item["code"] for item in shown]


def test_an_in_condition_on_a_multi_choice_matches_any_option_chosen() -> None:
    with_other = clean_answers(
        definition=MONTHLY, raw=monthly_yes(care_from=["gp", "other"], care_from_other="Massage therapist")
    )
    without = clean_answers(definition=MONTHLY, raw=monthly_yes(care_from=["gp"], care_from_other="Massage therapist"))
    assert with_other[0]["care_from_other"] == "Massage therapist"
    assert "care_from_other" not in without[0]


def test_hidden_required_questions_need_no_answer() -> None:
    _clean, errors = clean_answers(definition=MONTHLY, raw={"lbp_24h": "no", "new_health_problem": "no"})
    assert errors == {}


def test_an_invalid_answer_hides_its_follow_ups_instead_of_asking_for_them() -> None:
    _clean, errors = clean_answers(definition=MONTHLY, raw={"lbp_24h": "maybe", "new_health_problem": "no"})
    assert errors == {"lbp_24h": ["Please answer yes or no."]}


# --- clean_answers: required and conversion --------------------------------------------------


def test_each_unanswered_required_question_gets_one_clear_message() -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw={"lbp_24h": "yes", "care_sought": "yes"})
    assert clean == {"lbp_24h": True, "care_sought": True}
    assert errors == {
        "lbp_start": [ANSWER_THIS],
        "interference": [ANSWER_THIS],
        "pain_avg": [ANSWER_THIS],
        "pain_worst": [ANSWER_THIS],
        "care_from": ["Please choose at least one option."],
        "work_days_missed": [ANSWER_THIS],
        "new_health_problem": [ANSWER_THIS],
    }


def test_blank_strings_count_as_unanswered_and_optional_blanks_are_left_out() -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw=monthly_yes(recovered_on="", pain_avg="   "))
    assert "recovered_on" not in clean
    assert errors == {"pain_avg": [ANSWER_THIS]}


def test_a_form_post_of_strings_becomes_typed_answers() -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw=monthly_yes())
    assert errors == {}
    assert clean == {
        "lbp_24h": True,
        "lbp_start": "2026-03-01",
        "interference": 2,
        "pain_avg": 4,
        "pain_worst": 7,
        "care_sought": True,
        "care_from": ["gp", "physiotherapist"],  # in the definition's order
        "work_days_missed": 3,
        "recovered_on": "2026-03-09",
        "new_health_problem": False,
    }


def test_cleaning_clean_answers_changes_nothing() -> None:
    clean, _errors = clean_answers(definition=MONTHLY, raw=monthly_yes())
    assert clean_answers(definition=MONTHLY, raw=clean) == (clean, {})
    assert json.loads(json.dumps(clean)) == clean


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("yes", True),
        ("No", False),
        (" TRUE ", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("on", True),
        (True, True),
        (0, False),
    ],
)
def test_yes_no_accepts_what_forms_and_json_send(raw: Any, expected: bool) -> None:
    clean, errors = clean_answers(definition=small_definition(), raw={"pain": raw, "level": "3"})
    assert errors == {}
    assert clean["pain"] is expected


def test_numbers_and_dates_of_every_accepted_shape_are_typed() -> None:
    import datetime as dt

    definition = small_definition()
    raw = {"pain": "yes", "level": "+9", "weight": " 72.5 ", "on": dt.date(2026, 3, 1), "kind": "sharp", "where": "2"}
    clean, errors = clean_answers(definition=definition, raw=raw)
    assert errors == {}
    assert clean == {"pain": True, "level": 9, "weight": 72.5, "on": "2026-03-01", "kind": "sharp", "where": [2]}
    assert clean_answers(definition=definition, raw={"pain": True, "level": 9.0, "weight": 80})[0] == {
        "pain": True,
        "level": 9,
        "weight": 80.0,
    }


@pytest.mark.parametrize(
    ("code", "raw", "message"),
    [
        ("pain_avg", "11", "Please choose a number from 0 to 10."),
        ("pain_avg", "-1", "Please choose a number from 0 to 10."),
        ("pain_avg", "four", "Please enter a whole number from 0 to 10."),
        ("pain_avg", "4.5", "Please enter a whole number from 0 to 10."),
        ("pain_avg", True, "Please enter a whole number from 0 to 10."),
        ("work_days_missed", "32", "Please choose a number from 0 to 31."),
        ("interference", "5", "Please choose one of the options shown."),
        ("interference", "Somewhat", "Please choose one of the options shown."),
        ("care_from", ["gp", "naturopath"], "Please choose only from the options shown."),
        ("care_from", ["gp", "gp"], "Please choose each option only once."),
        ("lbp_start", "2026-02-30", "There is no date 2026-02-30. Please check the day and the month."),
        ("lbp_start", "2026-13-01", "There is no date 2026-13-01. Please check the day and the month."),
        ("lbp_start", "01/03/2026", "Please enter the date as year-month-day, for example 2026-03-01."),
        ("lbp_start", "20260301", "Please enter the date as year-month-day, for example 2026-03-01."),
        ("care_sought", "maybe", "Please answer yes or no."),
    ],
)
def test_a_wrong_answer_gets_one_message_written_for_the_participant(code: str, raw: Any, message: str) -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw=monthly_yes(**{code: raw}))
    assert errors == {code: [message]}
    assert code not in clean


def test_number_items_refuse_values_that_are_not_finite_numbers() -> None:
    for raw in ("nan", "inf", "1e3", "72,5", float("nan")):
        _clean, errors = clean_answers(definition=small_definition(), raw={"pain": "no", "weight": raw})
        assert errors == {"weight": ["Please enter a number from 30 to 250.5."]}, raw


def test_text_is_trimmed_and_too_long_text_is_refused() -> None:
    definition = small_definition()
    clean, errors = clean_answers(definition=definition, raw={"pain": "no", "note": "  a\r\nb\x00  "})
    assert (clean["note"], errors) == ("a\nb", {})
    _clean, errors = clean_answers(definition=definition, raw={"pain": "no", "note": "x" * 11})
    assert errors == {"note": ["Please shorten your answer to 10 characters or fewer (it has 11)."]}


def test_a_new_health_problem_needs_a_description() -> None:
    _clean, errors = clean_answers(definition=MONTHLY, raw=monthly_yes(new_health_problem="yes"))
    assert errors == {"new_health_problem_details": [ANSWER_THIS]}
    clean, errors = clean_answers(
        definition=MONTHLY, raw=monthly_yes(new_health_problem="yes", new_health_problem_details="Sprained ankle")
    )
    assert errors == {}
    assert clean["new_health_problem_details"] == "Sprained ankle"


def test_keys_that_are_not_items_are_ignored() -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw={**monthly_yes(), "csrfmiddlewaretoken": "abc", "submit": "Send"})
    assert errors == {}
    assert "csrfmiddlewaretoken" not in clean


form_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "0", "1", "4", "11", "2026-03-01", "2026-02-30", "gp", "other"]),
    st.integers(min_value=-5, max_value=50),
    st.booleans(),
    st.lists(st.sampled_from(["gp", "other", "x", ""]), max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(raw=st.fixed_dictionaries({}, optional={item["code"]: form_values for item in MONTHLY["items"]}))
def test_any_form_post_gives_one_message_per_shown_question_and_json_ready_answers(raw: dict[str, Any]) -> None:
    clean, errors = clean_answers(definition=MONTHLY, raw=raw)
    shown = {item["code"] for item in visible_items(definition=MONTHLY, answers=raw)}
    assert set(clean) <= shown and set(errors) <= shown
    assert not set(clean) & set(errors)
    assert all(len(messages) == 1 and messages[0].endswith(".") for messages in errors.values())
    assert json.loads(json.dumps(clean)) == clean


# --- scores ----------------------------------------------------------------------------------


def timepoint_answers(**overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {code: False for code in RMDQ_CODES}
    answers.update(dict(zip(EQ5D_CODES, [1, 1, 2, 2, 3], strict=True)))
    answers.update(
        eq5d_vas=73,
        visits_gp=2,
        visits_physio=4,
        visits_specialist=0,
        visits_emergency=1,
        hospital_admission=False,
        walking_minutes_week=150,
    )
    answers.update(overrides)
    return answers


def test_the_timepoint_questionnaire_asks_the_24_roland_morris_statements() -> None:
    rmdq = [item for item in TIMEPOINT["items"] if item["code"] in RMDQ_CODES]
    assert len(rmdq) == 24
    assert rmdq[0]["text"] == "I stay at home most of the time because of my back."
    assert rmdq[23]["text"] == "I stay in bed most of the time because of my back."
    assert all(item["type"] == "yes_no" and item["required"] for item in rmdq)


def test_eq5d_dimensions_have_five_levels_each_and_the_monthly_interference_scale_is_0_to_4() -> None:
    for code in EQ5D_CODES:
        assert [value for value, _label in _item(TIMEPOINT, code)["choices"]] == [1, 2, 3, 4, 5]
    assert _item(TIMEPOINT, "eq5d_mobility")["choices"][4][1] == "I am unable to walk about"
    assert _item(MONTHLY, "interference")["choices"] == [
        [0, "Not at all"],
        [1, "A little bit"],
        [2, "Somewhat"],
        [3, "Quite a bit"],
        [4, "Extremely"],
    ]


def test_rmdq_total_runs_from_0_to_24() -> None:
    assert score(definition=TIMEPOINT, answers=timepoint_answers())["rmdq_total"] == 0
    assert score(definition=TIMEPOINT, answers=timepoint_answers(**dict.fromkeys(RMDQ_CODES, True)))["rmdq_total"] == 24


@settings(max_examples=200, deadline=None)
@given(ticks=st.lists(st.booleans(), min_size=24, max_size=24))
def test_rmdq_total_is_the_number_of_yes_answers(ticks: list[bool]) -> None:
    answers = timepoint_answers(**dict(zip(RMDQ_CODES, ticks, strict=True)))
    assert score(definition=TIMEPOINT, answers=answers)["rmdq_total"] == sum(ticks)
    as_form = {code: ("yes" if tick else "no") for code, tick in zip(RMDQ_CODES, ticks, strict=True)}
    clean, _errors = clean_answers(definition=TIMEPOINT, raw=as_form)
    assert score(definition=TIMEPOINT, answers=clean)["rmdq_total"] == sum(ticks)


def test_rmdq_total_is_none_while_any_statement_is_unanswered() -> None:
    answers = timepoint_answers(**dict.fromkeys(RMDQ_CODES, True))
    del answers["rmdq_17"]
    assert score(definition=TIMEPOINT, answers=answers)["rmdq_total"] is None


def test_eq5d_profile_vas_and_the_other_timepoint_scores() -> None:
    assert score(definition=TIMEPOINT, answers=timepoint_answers()) == {
        "rmdq_total": 0,
        "eq5d_profile": "11223",
        "eq5d_vas": 73,
        "healthcare_visits": 7,
        "walking_minutes_week": 150,
    }


def test_eq5d_profile_is_none_without_every_dimension() -> None:
    answers = timepoint_answers()
    del answers["eq5d_pain"]
    scores = score(definition=TIMEPOINT, answers=answers)
    assert scores["eq5d_profile"] is None
    assert scores["eq5d_vas"] == 73


def test_scores_ignore_answers_to_hidden_items() -> None:
    definition = small_definition()
    assert score(definition=definition, answers={"pain": True, "level": 5}) == {"level_value": 5}
    assert score(definition=definition, answers={"pain": False, "level": 5}) == {"level_value": None}


def test_monthly_recurrence_score_is_the_24_hour_answer() -> None:
    assert score(definition=MONTHLY, answers={"lbp_24h": True}) == {"recurrence": True}
    assert score(definition=MONTHLY, answers={}) == {"recurrence": None}


# --- progress --------------------------------------------------------------------------------


def test_progress_counts_answered_questions_among_those_shown() -> None:
    assert progress(definition=MONTHLY, answers={}) == (0, 2)
    assert progress(definition=MONTHLY, answers={"lbp_24h": "no"}) == (1, 2)
    # Yes opens lbp_start, interference, pain_avg, pain_worst, care_sought, work_days_missed, recovered_on.
    assert progress(definition=MONTHLY, answers={"lbp_24h": "yes", "pain_avg": "4"}) == (2, 9)
    assert progress(definition=MONTHLY, answers=monthly_yes()) == (10, 10)  # care_sought yes adds care_from


def test_progress_does_not_count_invalid_or_hidden_answers() -> None:
    assert progress(definition=MONTHLY, answers={"lbp_24h": "yes", "pain_avg": "eleven"}) == (1, 9)
    assert progress(definition=MONTHLY, answers={"lbp_24h": "no", "pain_avg": "4"}) == (1, 2)


def test_the_engine_does_not_change_the_definition() -> None:
    before = copy.deepcopy(MONTHLY)
    shown = visible_items(definition=MONTHLY, answers=monthly_yes())
    shown[0]["text"] = "changed"
    clean_answers(definition=MONTHLY, raw=monthly_yes())
    score(definition=MONTHLY, answers=monthly_yes())
    assert before == MONTHLY


def test_version_2_asks_about_another_episode_only_when_there_was_one() -> None:
    one = monthly_episodes(episode("2026-03-01"))
    two = monthly_episodes(episode("2026-03-01", recovered_on="2026-03-04"), episode("2026-03-12", lasted_24h=False))

    shown_one = {item["code"] for item in visible_items(definition=MONTHLY_EPISODES, answers=one)}
    shown_two = {item["code"] for item in visible_items(definition=MONTHLY_EPISODES, answers=two)}
    clean, errors = clean_answers(definition=MONTHLY_EPISODES, raw=two)

    assert "ep1_pain_avg" in shown_one and "ep2_start" not in shown_one
    assert {"ep2_start", "ep2_24h", "ep2_more"} <= shown_two and "ep3_start" not in shown_two
    assert errors == {}
    assert [(e.start, e.lasted_24h) for e in episodes(clean)] == [(dt.date(2026, 3, 1), True), (dt.date(2026, 3, 12), False)]
    assert clean_answers(definition=MONTHLY_EPISODES, raw=monthly_episodes())[0] == {
        "lbp_any": False,
        "new_health_problem": False,
    }
