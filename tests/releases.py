"""Every release a test builds is checked with Frictionless (``tests/conftest.py`` wraps the export)."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO


def release_validate(archive: BinaryIO) -> None:
    """Unpack a release's zip and validate its ``datapackage.json`` and every resource it lists
    (schemas, codes, keys, sizes and hashes) with Frictionless; fail with its errors."""
    import frictionless

    with tempfile.TemporaryDirectory(prefix="release-check-") as work, zipfile.ZipFile(archive) as release:
        release.extractall(work)
        (descriptor,) = Path(work).glob("*/datapackage.json")
        report = frictionless.validate(str(descriptor))
        if not report.valid:
            errors = [f"{task.name}: {error.message}" for task in report.tasks for error in task.errors]
            errors += [error.message for error in report.errors]
            raise AssertionError("Frictionless finds the release invalid:\n" + "\n".join(errors[:40]))
