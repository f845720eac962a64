"""An instrument's text in other languages: optional, checked against the instrument, shown instead
of its own text where present, and never changing what is asked or how it is scored."""

from __future__ import annotations

from typing import Any

import pytest

from followup.instruments import DefinitionError, localised, steps, translation_for, validate_definition

DEFINITION: dict[str, Any] = {
    "code": "mini",
    "version": "1.0",
    "title": "Back pain",
    "intro": "A few questions.",
    "items": [
        {"code": "pain", "text": "Any back pain?", "type": "yes_no", "required": True, "help": "Since last month."},
        {
            "code": "care",
            "text": "Who did you see?",
            "type": "choice",
            "choices": [["gp", "GP"], ["physio", "Physiotherapist"]],
            "show_if": {"item": "pain", "equals": True},
        },
    ],
    "translations": {
        "fr": {
            "title": "Mal de dos",
            "items": {"pain": {"text": "Mal de dos ?"}, "care": {"choices": {"gp": "Médecin généraliste"}}},
        }
    },
}


def test_a_translation_replaces_the_text_it_has_and_keeps_the_rest() -> None:
    validate_definition(definition=DEFINITION)
    french = localised(definition=DEFINITION, language="fr-ca")  # the generic language serves a regional one
    assert french["title"] == "Mal de dos" and french["intro"] == "A few questions."
    pain, care = french["items"]
    assert (pain["text"], pain["help"]) == ("Mal de dos ?", "Since last month.")
    assert care["text"] == "Who did you see?" and care["choices"] == [
        ["gp", "Médecin généraliste"],
        ["physio", "Physiotherapist"],
    ]
    assert care["show_if"] == {"item": "pain", "equals": True}
    assert steps(definition=french) == steps(definition=DEFINITION)
    assert localised(definition=DEFINITION, language="it") == DEFINITION
    assert translation_for(definition=DEFINITION, language="en-au") == {}


@pytest.mark.parametrize(
    ("translations", "problem"),
    [
        ({"fr": {"items": {"nope": {"text": "x"}}}}, "not an item"),
        ({"fr": {"items": {"care": {"choices": {"dentist": "Dentiste"}}}}}, "choice values"),
        ({"fr": {"items": {"pain": {"type": "text"}}}}, "unknown key"),
        ({"fr": {"subtitle": "x"}}, "unknown key"),
        ({"fr": "Mal de dos"}, "language code"),
    ],
)
def test_a_translation_that_does_not_fit_the_instrument_is_refused(translations: Any, problem: str) -> None:
    with pytest.raises(DefinitionError, match=problem):
        validate_definition(definition={**DEFINITION, "translations": translations})
