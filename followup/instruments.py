"""The questionnaire engine. Instruments are data: a JSON-serialisable dict (see ``instrument_library``).

Pure Python, no database. ``validate_definition`` is for when a definition is written or loaded;
the other functions trust the definition they are given.

Every function converts answers before reading them, so it takes either raw form values
(``"no"``, ``"7"``) or what ``clean_answers`` returned; an answer that cannot be converted counts as
unanswered. Skip logic is evaluated in item order: an item is shown only if the item its condition
names is itself shown and answered with a matching value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from django.utils import formats
from django.utils.translation import gettext

ITEM_TYPES: Final = ("yes_no", "integer", "number", "date", "choice", "multi_choice", "text")
SCORE_METHODS: Final = ("count_true", "concat", "value", "sum")

# Codes become column names in exported datasets.
CODE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,62}")

_DEFINITION_KEYS: Final = frozenset({"code", "version", "title", "intro", "items", "scores", "translations"})
# A definition's text in another language: {"fr": {"title": ..., "intro": ..., "items": {code:
# {"text": ..., "help": ..., "choices": {value: label}}}, "scores": {code: label}}}. Whatever is
# left out reads in the definition's own language.
_TRANSLATION_KEYS: Final = frozenset({"title", "intro", "items", "scores"})
_ITEM_TRANSLATION_KEYS: Final = frozenset({"text", "help", "choices"})
_ITEM_KEYS: Final = frozenset({"code", "text", "type", "required", "show_if", "help", "identifying"})
# Items that identify a person whatever the definition says: shown only to roles that see contact
# details, and never released (a release carries the age at randomisation instead).
IDENTIFYING_CODES: Final = frozenset({"date_of_birth"})
HIDDEN: Final = "hidden"
_TYPE_KEYS: Final[dict[str, frozenset[str]]] = {
    "yes_no": frozenset(),
    "integer": frozenset({"min", "max"}),
    "number": frozenset({"min", "max"}),
    "date": frozenset(),
    "choice": frozenset({"choices"}),
    "multi_choice": frozenset({"choices"}),
    "text": frozenset({"max_length"}),
}
_SCORE_KEYS: Final = frozenset({"code", "method", "items", "label"})
_SCORE_ITEM_TYPES: Final[dict[str, frozenset[str]]] = {
    "count_true": frozenset({"yes_no"}),
    "sum": frozenset({"integer", "number"}),
    "concat": frozenset({"choice", "integer"}),
    "value": frozenset(ITEM_TYPES),
}

Definition = Mapping[str, Any]
Item = Mapping[str, Any]


class DefinitionError(ValueError):
    pass


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Unanswered:
    def __repr__(self) -> str:
        return "UNANSWERED"


_UNANSWERED: Final = _Unanswered()


# --- converting one answer -------------------------------------------------------------------

_TRUE_WORDS: Final = frozenset({"yes", "y", "true", "t", "1", "on"})
_FALSE_WORDS: Final = frozenset({"no", "n", "false", "f", "0", "off"})
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE_TEXT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _is_blank(raw: Any) -> bool:
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, list | tuple):
        return all(_is_blank(part) for part in raw)
    return False


def _show_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_message(item: Item, *, whole: bool = False, choose: bool = False) -> str:
    """ "Please enter a whole number from 0 to 10." and its kin, each a whole sentence to translate."""
    low, high = item.get("min"), item.get("max")
    values = {"low": _show_number(low) if low is not None else "", "high": _show_number(high) if high is not None else ""}
    kind = "choose" if choose else "whole" if whole else "number"
    messages = {
        ("choose", True, True): gettext("Please choose a number from %(low)s to %(high)s."),
        ("choose", True, False): gettext("Please choose a number of %(low)s or more."),
        ("choose", False, True): gettext("Please choose a number of %(high)s or less."),
        ("choose", False, False): gettext("Please choose a number."),
        ("whole", True, True): gettext("Please enter a whole number from %(low)s to %(high)s."),
        ("whole", True, False): gettext("Please enter a whole number of %(low)s or more."),
        ("whole", False, True): gettext("Please enter a whole number of %(high)s or less."),
        ("whole", False, False): gettext("Please enter a whole number."),
        ("number", True, True): gettext("Please enter a number from %(low)s to %(high)s."),
        ("number", True, False): gettext("Please enter a number of %(low)s or more."),
        ("number", False, True): gettext("Please enter a number of %(high)s or less."),
        ("number", False, False): gettext("Please enter a number."),
    }
    return messages[(kind, low is not None, high is not None)] % values


def _check_range(item: Item, value: float) -> None:
    low, high = item.get("min"), item.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _Invalid(_range_message(item, choose=True))


def _to_yes_no(item: Item, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _Invalid(gettext("Please answer yes or no."))


def _to_integer(item: Item, raw: Any) -> int:
    value: int | None = None
    try:
        if isinstance(raw, bool):
            value = None
        elif isinstance(raw, int):
            value = raw
        elif isinstance(raw, float | Decimal) and math.isfinite(raw) and raw == int(raw):
            value = int(raw)
        elif isinstance(raw, str) and _INTEGER_TEXT.fullmatch(raw.strip()):
            value = int(raw.strip())
    except ValueError:  # more digits than int() accepts
        value = None
    if value is None:
        raise _Invalid(_range_message(item, whole=True))
    _check_range(item, value)
    return value


def _to_number(item: Item, raw: Any) -> float:
    value: float | None = None
    try:
        if isinstance(raw, bool):
            value = None
        elif isinstance(raw, int | float | Decimal):
            value = float(raw)
        elif isinstance(raw, str) and _NUMBER_TEXT.fullmatch(raw.strip()):
            value = float(raw.strip())
    except (ValueError, OverflowError):
        value = None
    if value is None or not math.isfinite(value):
        raise _Invalid(_range_message(item))
    _check_range(item, value)
    return value


def _to_date(item: Item, raw: Any) -> str:
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw.isoformat()
    text = raw.strip() if isinstance(raw, str) else ""
    if not _DATE_TEXT.fullmatch(text):
        raise _Invalid(gettext("Please enter the date as year-month-day, for example 2026-03-01."))
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise _Invalid(gettext("There is no date %(date)s. Please check the day and the month.") % {"date": text}) from None
    return text


def _match_choice(item: Item, raw: Any) -> Any:
    """The choice value ``raw`` stands for: itself, or its text as a form sends it ("2" for 2)."""
    choices = item["choices"]
    for value, _label in choices:
        if type(raw) is type(value) and raw == value:
            return value
    if isinstance(raw, str):
        for value, _label in choices:
            if str(value) == raw.strip():
                return value
    raise _Invalid(gettext("Please choose one of the options shown."))


def _to_multi_choice(item: Item, raw: Any) -> list[Any]:
    parts = list(raw) if isinstance(raw, list | tuple) else [raw]
    try:
        picked = [_match_choice(item, part) for part in parts if not _is_blank(part)]
    except _Invalid:
        raise _Invalid(gettext("Please choose only from the options shown.")) from None
    if len(set(picked)) != len(picked):
        raise _Invalid(gettext("Please choose each option only once."))
    return [value for value, _label in item["choices"] if value in picked]


def _to_text(item: Item, raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Invalid(gettext("Please type your answer as text."))
    # PostgreSQL cannot store NUL in text or jsonb; a person cannot type it anyway.
    text = raw.replace("\x00", "").replace("\r\n", "\n").strip()
    limit = item.get("max_length")
    if limit is not None and len(text) > limit:
        raise _Invalid(
            gettext("Please shorten your answer to %(limit)s characters or fewer (it has %(length)s).")
            % {"limit": limit, "length": len(text)}
        )
    return text


_CONVERTERS: Final[dict[str, Callable[[Item, Any], Any]]] = {
    "yes_no": _to_yes_no,
    "integer": _to_integer,
    "number": _to_number,
    "date": _to_date,
    "choice": _match_choice,
    "multi_choice": _to_multi_choice,
    "text": _to_text,
}


def _convert(item: Item, raw: Any) -> Any:
    """The typed answer, or _UNANSWERED if blank; raises _Invalid with a message for the participant."""
    if _is_blank(raw):
        return _UNANSWERED
    value = _CONVERTERS[item["type"]](item, raw)
    return _UNANSWERED if value in ("", []) else value


# --- skip logic ------------------------------------------------------------------------------


def _same(answer: Any, wanted: Any) -> bool:
    return isinstance(answer, bool) == isinstance(wanted, bool) and answer == wanted


def _condition_met(condition: Mapping[str, Any], answer: Any) -> bool:
    """A multi_choice answer meets the condition when any option chosen matches."""
    if answer is _UNANSWERED:
        return False
    wanted = [condition["equals"]] if "equals" in condition else list(condition["in"])
    chosen = answer if isinstance(answer, list) else [answer]
    return any(_same(one, value) for one in chosen for value in wanted)


def _walk(definition: Definition, answers: Mapping[str, Any]) -> list[tuple[Item, Any, str | None]]:
    """The shown items in order, each with its typed answer (or _UNANSWERED) and its error message."""
    typed: dict[str, Any] = {}
    shown: list[tuple[Item, Any, str | None]] = []
    for item in definition["items"]:
        condition = item.get("show_if")
        if condition is not None and not _condition_met(condition, typed.get(condition["item"], _UNANSWERED)):
            continue
        error: str | None = None
        try:
            value = _convert(item, answers.get(item["code"]))
        except _Invalid as invalid:
            value, error = _UNANSWERED, invalid.message
        typed[item["code"]] = value
        shown.append((item, value, error))
    return shown


# --- public functions ------------------------------------------------------------------------


def visible_items(*, definition: Definition, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(item) for item, _value, _error in _walk(definition, answers)]


def clean_answers(*, definition: Definition, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Typed answers to the shown items, and one message per item that needs fixing.

    Answers to hidden items and keys that are not items are dropped; a blank optional item is
    left out. Dates come back as ISO strings and multi_choice values in the definition's order,
    so the clean answers are JSON-serialisable and cleaning them again changes nothing.
    """
    clean: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for item, value, error in _walk(definition, raw):
        code = item["code"]
        if error is not None:
            errors[code] = [error]
        elif value is not _UNANSWERED:
            clean[code] = value
        elif item.get("required", False):
            message = (
                gettext("Please choose at least one option.")
                if item["type"] == "multi_choice"
                else gettext("Please answer this question.")
            )
            errors[code] = [message]
    return clean, errors


def score(*, definition: Definition, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Every score in the definition; None for a score with any of its items unanswered or hidden."""
    typed = {item["code"]: value for item, value, _error in _walk(definition, answers)}
    results: dict[str, Any] = {}
    for spec in definition.get("scores", ()):
        values = [typed.get(code, _UNANSWERED) for code in spec["items"]]
        result: Any = None
        if all(value is not _UNANSWERED for value in values):
            match spec["method"]:
                case "count_true":
                    result = sum(1 for value in values if value is True)
                case "sum":
                    result = sum(values)
                case "concat":
                    result = "".join(str(value) for value in values)
                case "value":
                    result = values[0]
        results[spec["code"]] = result
    return results


def progress(*, definition: Definition, answers: Mapping[str, Any]) -> tuple[int, int]:
    """(answered, shown): an invalid answer is not counted as answered."""
    shown = _walk(definition, answers)
    return sum(1 for _item, value, _error in shown if value is not _UNANSWERED), len(shown)


def is_identifying(item: Item) -> bool:
    """Whether an item identifies the person (a date of birth, or flagged ``"identifying": true``)."""
    return item.get("code") in IDENTIFYING_CODES or bool(item.get("identifying"))


def identifying_codes(*, definition: Definition) -> frozenset[str]:
    return frozenset(item["code"] for item in definition["items"] if is_identifying(item)) | IDENTIFYING_CODES


def answers_redact(*, definition: Definition, answers: Mapping[str, Any]) -> dict[str, Any]:
    """``answers`` with every identifying answer replaced by ``HIDDEN``: for roles that do not see
    contact details. Unanswered items stay unanswered, so what was asked stays visible."""
    codes = identifying_codes(definition=definition)
    return {code: HIDDEN if code in codes else value for code, value in answers.items()}


@dataclass(frozen=True)
class ReadableAnswer:
    code: str
    question: str
    answer: str
    hidden: bool = False


def _readable(item: Item, value: Any) -> str:
    match item["type"]:
        case "yes_no":
            return gettext("Yes") if value is True else gettext("No") if value is False else str(value)
        case "choice":
            return next((str(label) for choice, label in item["choices"] if _same(value, choice)), str(value))
        case "multi_choice":
            labels = {str(choice): str(label) for choice, label in item["choices"]}
            picked = value if isinstance(value, list) else [value]
            return "; ".join(labels.get(str(v), str(v)) for v in picked) or gettext("None of these")
        case "date":
            try:
                return formats.date_format(dt.date.fromisoformat(str(value)), "j M Y")
            except ValueError:
                return str(value)
        case "number" | "integer":
            return _show_number(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
    return str(value)


def answers_readable(*, definition: Definition, answers: Mapping[str, Any], show_identifying: bool) -> list[ReadableAnswer]:
    """The answered items in the questionnaire's order as a person reads them: the question's text
    and the answer's label ("Yes", "GP", "3 Mar 2026") instead of codes. Identifying answers read
    as hidden unless ``show_identifying``. Answers to items no longer in the definition come last."""
    rows: list[ReadableAnswer] = []
    known = set()
    for item in definition["items"]:
        code = item["code"]
        known.add(code)
        if code not in answers:
            continue
        if is_identifying(item) and not show_identifying:
            rows.append(
                ReadableAnswer(code, str(item["text"]), gettext("Hidden: only roles that see contact details see it"), True)
            )
            continue
        rows.append(ReadableAnswer(code, str(item["text"]), _readable(item, answers[code])))
    rows += [ReadableAnswer(code, code, str(value)) for code, value in answers.items() if code not in known]
    return rows


def scores_readable(*, definition: Definition, scores: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of each score, in the definition's order; "—" where it could not be computed."""
    labels = {spec["code"]: str(spec.get("label") or spec["code"]) for spec in definition.get("scores", ())}
    return [(labels.get(code, code), "—" if value is None else str(value)) for code, value in scores.items()]


# --- checking a definition -------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_code(where: str, code: Any) -> None:
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        raise DefinitionError(
            f"{where}: code {code!r} must be lower-case letters, digits and underscores, starting with a letter (at most 63)."
        )


def _check_keys(where: str, found: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise DefinitionError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))}).")


def _check_choices(where: str, choices: Any) -> None:
    if not isinstance(choices, list | tuple) or not choices:
        raise DefinitionError(f"{where}: a choice item needs a non-empty list of [value, label] choices.")
    values = []
    for choice in choices:
        if not isinstance(choice, list | tuple) or len(choice) != 2:
            raise DefinitionError(f"{where}: choice {choice!r} is not a [value, label] pair.")
        value, label = choice
        if not (_is_int(value) or _nonempty_str(value)):
            raise DefinitionError(f"{where}: choice value {value!r} must be an integer or a non-empty string.")
        if not _nonempty_str(label):
            raise DefinitionError(f"{where}: choice {value!r} needs a label.")
        values.append(value)
    if len({type(value) for value in values}) > 1:
        raise DefinitionError(f"{where}: choice values must be all integers or all strings.")
    if len(set(values)) != len(values):
        raise DefinitionError(f"{where}: choice values must be unique.")


def _check_bounds(where: str, item: Item) -> None:
    for key in ("min", "max"):
        bound = item.get(key)
        if bound is None:
            continue
        fits = _is_int(bound) if item["type"] == "integer" else (_is_int(bound) or isinstance(bound, float))
        if not fits or not math.isfinite(bound):
            raise DefinitionError(f"{where}: {key} {bound!r} is not a {'whole ' if item['type'] == 'integer' else ''}number.")
    low, high = item.get("min"), item.get("max")
    if low is not None and high is not None and low > high:
        raise DefinitionError(f"{where}: min {low} is greater than max {high}.")


def _check_condition_value(where: str, target: Item, value: Any) -> None:
    if target["type"] == "multi_choice":
        possible = any(type(value) is type(choice) and value == choice for choice, _label in target["choices"])
    else:
        try:
            possible = _same(_convert(target, value), value)
        except _Invalid:
            possible = False
    if not possible:
        raise DefinitionError(f"{where}: show_if value {value!r} is not a possible answer to {target['code']!r}.")


def _check_show_if(where: str, condition: Any, earlier: Mapping[str, Item], all_codes: set[str]) -> None:
    if not isinstance(condition, Mapping) or "item" not in condition:
        raise DefinitionError(f'{where}: show_if must be {{"item": code, "equals": value}} or {{"item": code, "in": [values]}}.')
    if set(condition) not in ({"item", "equals"}, {"item", "in"}):
        raise DefinitionError(f'{where}: show_if needs "item" and exactly one of "equals" or "in", nothing else.')
    target_code = condition["item"]
    if not isinstance(target_code, str) or target_code not in earlier:
        if isinstance(target_code, str) and target_code in all_codes:
            raise DefinitionError(f"{where}: show_if refers to {target_code!r}, which is not an earlier item.")
        raise DefinitionError(f"{where}: show_if refers to unknown item {target_code!r}.")
    if "in" in condition:
        wanted = condition["in"]
        if not isinstance(wanted, list | tuple) or not wanted:
            raise DefinitionError(f'{where}: show_if "in" must be a non-empty list.')
    else:
        wanted = [condition["equals"]]
    for value in wanted:
        _check_condition_value(where, earlier[target_code], value)


def _check_item(where: str, item: Item, earlier: Mapping[str, Item], all_codes: set[str]) -> None:
    item_type = item.get("type")
    if item_type not in ITEM_TYPES:
        raise DefinitionError(f"{where}: unknown type {item_type!r} (known: {', '.join(ITEM_TYPES)}).")
    _check_keys(where, item, _ITEM_KEYS | _TYPE_KEYS[item_type])
    if not _nonempty_str(item.get("text")):
        raise DefinitionError(f"{where}: the question text is missing.")
    if not isinstance(item.get("required", False), bool):
        raise DefinitionError(f"{where}: required must be true or false.")
    if "help" in item and not isinstance(item["help"], str):
        raise DefinitionError(f"{where}: help must be text.")
    if not isinstance(item.get("identifying", False), bool):
        raise DefinitionError(f"{where}: identifying must be true or false.")
    if item_type in ("choice", "multi_choice"):
        _check_choices(where, item.get("choices"))
    if item_type in ("integer", "number"):
        _check_bounds(where, item)
    if item_type == "text" and "max_length" in item:
        limit = item["max_length"]
        if not _is_int(limit) or limit < 1:
            raise DefinitionError(f"{where}: max_length must be a whole number of at least 1.")
    if "show_if" in item:
        _check_show_if(where, item["show_if"], earlier, all_codes)


def _check_score(where: str, spec: Mapping[str, Any], items: Mapping[str, Item]) -> None:
    _check_keys(where, spec, _SCORE_KEYS)
    method = spec.get("method")
    if method not in SCORE_METHODS:
        raise DefinitionError(f"{where}: unknown method {method!r} (known: {', '.join(SCORE_METHODS)}).")
    codes = spec.get("items")
    if not isinstance(codes, list | tuple) or not codes:
        raise DefinitionError(f"{where}: items must be a non-empty list of item codes.")
    if len(set(map(str, codes))) != len(codes):
        raise DefinitionError(f"{where}: an item is listed twice.")
    for code in codes:
        if not isinstance(code, str) or code not in items:
            raise DefinitionError(f"{where}: refers to unknown item {code!r}.")
        if items[code]["type"] not in _SCORE_ITEM_TYPES[method]:
            raise DefinitionError(
                f"{where}: {method} cannot use {code!r}, a {items[code]['type']} item "
                f"(it takes {', '.join(sorted(_SCORE_ITEM_TYPES[method]))})."
            )
    if method == "value" and len(codes) != 1:
        raise DefinitionError(f"{where}: the value method takes exactly one item.")


def validate_definition(*, definition: Definition) -> None:
    """Raise DefinitionError naming the first problem found; return None for a usable definition."""
    if not isinstance(definition, Mapping):
        raise DefinitionError("A definition must be a dict.")
    try:
        json.dumps(definition, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"The definition is not JSON-serialisable: {exc}.") from exc
    _check_keys("Definition", definition, _DEFINITION_KEYS)
    _check_code("Definition", definition.get("code"))
    name = f"Instrument {definition['code']!r}"
    for key in ("version", "title"):
        if not _nonempty_str(definition.get(key)):
            raise DefinitionError(f"{name}: {key} must be a non-empty string.")
    if "intro" in definition and not isinstance(definition["intro"], str):
        raise DefinitionError(f"{name}: intro must be text.")

    items = definition.get("items")
    if not isinstance(items, list | tuple) or not items:
        raise DefinitionError(f"{name}: items must be a non-empty list.")
    if not all(isinstance(item, Mapping) for item in items):
        raise DefinitionError(f"{name}: every item must be a dict.")
    all_codes = {item["code"] for item in items if isinstance(item.get("code"), str)}
    earlier: dict[str, Item] = {}
    for position, item in enumerate(items, start=1):
        _check_code(f"{name}, item {position}", item.get("code"))
        where = f"{name}, item {item['code']!r}"
        if item["code"] in earlier:
            raise DefinitionError(f"{where}: duplicate item code.")
        _check_item(where, item, earlier, all_codes)
        earlier[item["code"]] = item

    scores = definition.get("scores", [])
    if not isinstance(scores, list | tuple) or not all(isinstance(spec, Mapping) for spec in scores):
        raise DefinitionError(f"{name}: scores must be a list of dicts.")
    seen: set[str] = set()
    for position, spec in enumerate(scores, start=1):
        _check_code(f"{name}, score {position}", spec.get("code"))
        where = f"{name}, score {spec['code']!r}"
        if spec["code"] in seen:
            raise DefinitionError(f"{where}: duplicate score code.")
        seen.add(spec["code"])
        _check_score(where, spec, earlier)
    _check_translations(name, definition.get("translations", {}), earlier, seen)


def _check_translations(name: str, translations: Any, items: Mapping[str, Item], scores: set[str]) -> None:
    if not isinstance(translations, Mapping):
        raise DefinitionError(f"{name}: translations must map language codes to text.")
    for language, text in translations.items():
        where = f"{name}, translation {language!r}"
        if not _nonempty_str(language) or not isinstance(text, Mapping):
            raise DefinitionError(f"{where}: must map a language code to the text in that language.")
        _check_keys(where, text, _TRANSLATION_KEYS)
        for key in ("title", "intro"):
            if key in text and not _nonempty_str(text[key]):
                raise DefinitionError(f"{where}: {key} must be a non-empty string.")
        for code, label in (text.get("scores") or {}).items():
            if code not in scores or not _nonempty_str(label):
                raise DefinitionError(f"{where}: score {code!r} is not a score, or its label is empty.")
        translated = text.get("items") or {}
        if not isinstance(translated, Mapping):
            raise DefinitionError(f"{where}: items must map item codes to their text.")
        for code, parts in translated.items():
            if code not in items or not isinstance(parts, Mapping):
                raise DefinitionError(f"{where}: {code!r} is not an item of the instrument.")
            _check_keys(f"{where}, item {code!r}", parts, _ITEM_TRANSLATION_KEYS)
            for key in ("text", "help"):
                if key in parts and not isinstance(parts[key], str):
                    raise DefinitionError(f"{where}, item {code!r}: {key} must be text.")
            labels = parts.get("choices", {})
            values = {str(value) for value, _label in items[code].get("choices", ())}
            if not isinstance(labels, Mapping) or not set(map(str, labels)) <= values:
                raise DefinitionError(f"{where}, item {code!r}: choices must map the item's choice values to labels.")


def translation_for(*, definition: Definition, language: str) -> Mapping[str, Any]:
    """The definition's text in ``language`` (or its generic language: "fr" for "fr-ca"), or {}."""
    translations = definition.get("translations") or {}
    for code in (language, language.split("-")[0]):
        if code in translations:
            return dict(translations[code])
    return {}


def localised(*, definition: Definition, language: str) -> dict[str, Any]:
    """The definition as it reads in ``language``: the same items, codes, values and conditions, with
    the title, intro, question text, help and option labels translated where the definition has a
    translation, and as written elsewhere. For showing only: skip logic and steps read the
    definition itself, so they are the same in every language."""
    text = translation_for(definition=definition, language=language)
    if not text:
        return dict(definition)
    result = dict(definition)
    for key in ("title", "intro"):
        if text.get(key):
            result[key] = text[key]
    translated = text.get("items") or {}
    items = []
    for item in definition["items"]:
        parts = translated.get(item["code"]) or {}
        copy = dict(item)
        if parts.get("text"):
            copy["text"] = parts["text"]
        if parts.get("help"):
            copy["help"] = parts["help"]
        if "choices" in item and parts.get("choices"):
            labels = {str(key): label for key, label in parts["choices"].items()}
            copy["choices"] = [[value, labels.get(str(value)) or label] for value, label in item["choices"]]
        items.append(copy)
    result["items"] = items
    score_labels = text.get("scores") or {}
    result["scores"] = [
        {**spec, "label": score_labels[spec["code"]]} if spec["code"] in score_labels else spec
        for spec in definition.get("scores", ())
    ]
    return result


# --- steps: the participant's questionnaire, a screen at a time -------------------------------

# A section longer than this is shown over several screens of (nearly) equal size.
STEP_MAX_QUESTIONS: Final = 6
# ... and a screen holds at most this much (``_screen_weight``): on a 390 x 844 phone about two
# screens' height, whatever the questions (five EQ-5D questions of five long options each were 3.4).
STEP_MAX_WEIGHT: Final = 8


def _screen_weight(item: Item) -> float:
    """How much of a screen a question takes, in yes/no questions: a field or a yes/no row is one; a
    list of options stacks them, two options to a yes/no row's height."""
    if item.get("type") in {"choice", "multi_choice"}:
        return 1 + (len(item.get("choices") or []) - 1) / 2
    return 1


@dataclass(frozen=True)
class Step:
    """One screen of the participant's questionnaire: item codes in the definition's order, and the
    instructions its questions share (said once, at the top, instead of under each question)."""

    number: int  # 1-based position among every step of the definition (stable: used in addresses)
    codes: tuple[str, ...]
    instructions: str = ""


def _condition_key(condition: Mapping[str, Any]) -> str:
    return json.dumps(condition, sort_keys=True)


def _sections(definition: Definition) -> list[tuple[list[Item], str]]:
    """The definition's items in sections, derived from the definition alone (definitions carry no
    sections, and published versions never change):

    - items asked under the same condition, when several are (one episode's questions), form a section;
    - a question whose condition is its own and names an item of the current section (who did you
      see, asked after "did you seek care") stays with it;
    - consecutive unconditional items sharing their help text (the 24 Roland-Morris statements)
      form a section whose help is its instructions;
    - other consecutive unconditional items form a section.
    """
    items = list(definition["items"])
    shared_conditions: dict[str, int] = {}
    for item in items:
        if "show_if" in item:
            key = _condition_key(item["show_if"])
            shared_conditions[key] = shared_conditions.get(key, 0) + 1
    helps = [item.get("help") or "" for item in items]

    def shared_help(position: int) -> str:
        text = helps[position]
        if text and (
            (position > 0 and helps[position - 1] == text) or (position + 1 < len(items) and helps[position + 1] == text)
        ):
            return text
        return ""

    sections: list[tuple[list[Item], str]] = []
    current: list[Item] = []
    current_key: str | None = None
    for position, item in enumerate(items):
        condition = item.get("show_if")
        codes = {member["code"] for member in current}
        if condition is not None and shared_conditions[_condition_key(condition)] == 1 and condition["item"] in codes:
            current.append(item)  # a follow-up question stays with the question it follows
            continue
        if condition is not None:
            key = "if:" + _condition_key(condition)
        elif help_text := shared_help(position):
            key = "help:" + help_text
        else:
            key = "plain"
        if current and key == current_key:
            current.append(item)
            continue
        if current:
            sections.append((current, current_key[5:] if current_key and current_key.startswith("help:") else ""))
        current, current_key = [item], key
    if current:
        sections.append((current, current_key[5:] if current_key and current_key.startswith("help:") else ""))
    return sections


def steps(*, definition: Definition) -> list[Step]:
    """Every step of the participant's questionnaire, whatever the answers: a section per step, and a
    section of more than ``STEP_MAX_QUESTIONS`` questions, or heavier than ``STEP_MAX_WEIGHT``, over
    as few steps as needed, of (nearly) equal size. Which steps are shown depends on the answers (``visible_steps``)."""
    result: list[Step] = []
    for section, instructions in _sections(definition):
        for chunk in _screens(section):
            codes = tuple(item["code"] for item in chunk)
            result.append(Step(number=len(result) + 1, codes=codes, instructions=instructions))
    return result


def _weight(items: list[Item]) -> float:
    return sum(_screen_weight(item) for item in items)


def _screens(items: list[Item]) -> list[list[Item]]:
    """A section's questions over as few screens as hold them (at most ``STEP_MAX_QUESTIONS`` and
    ``STEP_MAX_WEIGHT`` each; a question heavier than that alone gets a screen of its own), of
    (nearly) equal length when that fits (7 yes/no questions as 4 and 3, not 6 and 1)."""
    packed: list[list[Item]] = [[]]
    for item in items:
        if packed[-1] and (len(packed[-1]) == STEP_MAX_QUESTIONS or _weight([*packed[-1], item]) > STEP_MAX_WEIGHT):
            packed.append([])
        packed[-1].append(item)
    even = _evenly(items, len(packed))
    if all(len(run) == 1 or _weight(run) <= STEP_MAX_WEIGHT for run in even):
        return even
    return packed


def _evenly(items: list[Item], parts: int) -> list[list[Item]]:
    """``items`` in order, in ``parts`` runs of (nearly) equal length, the longer ones first."""
    size, extra = divmod(len(items), parts)
    runs: list[list[Item]] = []
    start = 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        runs.append(items[start:end])
        start = end
    return runs


def visible_steps(*, definition: Definition, answers: Mapping[str, Any]) -> list[Step]:
    """The steps with at least one question shown, given the answers so far (skip logic as everywhere:
    ``visible_items``). Answers to later steps may show or hide earlier ones' follow-up questions only
    through their own conditions, so the list grows or shrinks as the participant answers."""
    shown = {item["code"] for item in visible_items(definition=definition, answers=answers)}
    return [step for step in steps(definition=definition) if shown.intersection(step.codes)]


def step_clean(
    *, definition: Definition, step: Step, answers: Mapping[str, Any], raw: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``clean_answers`` restricted to one step: the step's answers (``raw``) read with the answers
    already given to the other steps (which decide what this step shows). Returns every answer kept
    (the other steps' as they were, this step's typed; a blank or hidden one of this step left
    out) and the errors of this step's questions only."""
    merged = {code: value for code, value in answers.items() if code not in step.codes}
    merged.update({code: value for code, value in raw.items() if code in step.codes})
    clean, errors = clean_answers(definition=definition, raw=merged)
    kept = {code: value for code, value in answers.items() if code not in step.codes}
    kept.update({code: value for code, value in clean.items() if code in step.codes})
    return kept, {code: messages for code, messages in errors.items() if code in step.codes}


def resume_step(*, definition: Definition, answers: Mapping[str, Any], saved_through: int) -> Step | None:
    """Where a participant goes on: the first shown step never saved (its number is above
    ``saved_through``) or with a question still to answer or correct; None when every shown step is
    done (the review comes next)."""
    for step in visible_steps(definition=definition, answers=answers):
        _kept, errors = step_clean(definition=definition, step=step, answers=answers, raw=answers)
        if step.number > saved_through or errors:
            return step
    return None
