"""An app, installed only in the release kill test's worker, that slows each progress step of a
release build: the build then spends seconds with its partial file open, long enough to be killed."""

from __future__ import annotations

import os
import time
from typing import Any

from django.apps import AppConfig


class SlowReleaseConfig(AppConfig):
    name = "tests.integration"
    label = "slow_release"

    def ready(self) -> None:
        from closeout.releases import services

        step = float(os.environ.get("SLOW_RELEASE_STEP_SECONDS", "0.5"))
        original = services._Progress.__call__

        def slowly(progress: Any, percent: int) -> None:
            original(progress, percent)
            time.sleep(step)

        services._Progress.__call__ = slowly  # type: ignore[method-assign]
