"""Settings for the worker processes of the kill test: the product's own, with e-mail going to a
slow outbox in the directory the test names (``KILL_TEST_OUTBOX``)."""

import os

from trial.settings import *  # noqa: F403

EMAIL_BACKEND = "tests.integration.slow_backend.SlowOutboxEmailBackend"
EMAIL_FILE_PATH = os.environ["KILL_TEST_OUTBOX"]
