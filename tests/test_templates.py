"""Django's template tags and variables end on the line they start on: one that spans lines is not
a tag but text, and the page shows it as written ("{% translate ... %}" on the CONSORT page did)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENERS = {"{%": "%}", "{{": "}}", "{#": "#}"}


def spanning(text: str) -> list[int]:
    """The line numbers where a tag, variable or comment opens and does not close on that line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for opener, closer in OPENERS.items():
            for match in re.finditer(re.escape(opener), line):
                if closer not in line[match.end() :]:
                    found.append(number)
    return found


def test_the_scan_finds_a_tag_that_spans_lines() -> None:
    assert spanning('<p>{% translate "one\n two" %}</p>\n{{ a }}\n{# b\n #}') == [1, 4]


def test_no_template_has_a_tag_that_spans_lines() -> None:
    templates = [path for path in ROOT.glob("**/templates/**/*.html") if ".venv" not in path.parts]
    assert len(templates) > 50
    offenders = {str(path.relative_to(ROOT)): lines for path in templates if (lines := spanning(path.read_text()))}
    assert offenders == {}
