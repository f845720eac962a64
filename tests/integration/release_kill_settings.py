"""Settings for the worker processes of the release kill test: the product's own, with each
progress step of a release build slowed (``SLOW_RELEASE_STEP_SECONDS``), so that a SIGKILL finds the
build in the middle of writing its zip."""

from trial.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.integration.slow_release.SlowReleaseConfig"]  # noqa: F405
