"""Schemathesis over the whole API schema, as a blinded role (investigator) and an unblinded one
(coordinator), in-process against the Django WSGI application: no server error, and every response
conforms to the schema (status code documented, content type, body).

Slow (a few minutes): marked ``fuzz``, which runs only when asked for by name (``-m fuzz``, or CI's
PostgreSQL pass); see tests/conftest.py. ``FUZZ_EXAMPLES`` sets the examples per operation and role.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import close_old_connections, transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# Not checked: ignored_auth re-sends a request without auth, but the session cookie goes with it (the
# authorisation matrix tests refusals); positive_data_acceptance wants 2xx for any body the schema
# allows, while the services refuse, with a 400 on the field, what breaks a rule no schema can say
# (an unknown participant, a date before randomisation).
NOT_CHECKED = [ignored_auth, positive_data_acceptance]
FUZZED: dict[str, int] = {}
FUZZER_ADDRESS = "192.0.2.77"  # TEST-NET-1: the token endpoint's throttle counts this client apart  # requests made, by role (reported by the test's output)


class InProcessApp(WSGIHandler):
    """The project's WSGI application for in-process fuzzing: the test's database transaction stays
    open (as Django's test client keeps it), CSRF is left to the session's own test (the client
    signs in with a session cookie), and every request is rolled back afterwards, so each example
    starts from the same world."""

    def __init__(self, counter: str) -> None:
        super().__init__()
        self.counter = counter

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        FUZZED[self.counter] = FUZZED.get(self.counter, 0) + 1
        environ["REMOTE_ADDR"] = FUZZER_ADDRESS  # its own throttle counters, not those of other tests
        request_started.disconnect(close_old_connections)
        savepoint = transaction.savepoint()
        try:
            return list(super().__call__(environ, start_response))
        finally:
            transaction.savepoint_rollback(savepoint)
            request_started.connect(close_old_connections)

    def get_response(self, request: Any) -> Any:
        request._dont_enforce_csrf_checks = True
        return super().get_response(request)


def _schema() -> Any:
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    return schemathesis.openapi.from_dict(document)


SCHEMA = _schema()


@pytest.mark.parametrize("role", ["investigator", "coordinator"])
def test_the_api_answers_every_fuzzed_request_as_its_schema_says(world, role: str, record_property) -> None:
    client = Client()
    client.force_login(world.users[role])
    cookies = {"sessionid": client.cookies["sessionid"].value}
    app = InProcessApp(role)
    failures: list[str] = []
    operations = [result.ok() for result in SCHEMA.get_all_operations()]
    for operation in operations:

        @given(
            case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
            | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(app=app, cookies=cookies, excluded_checks=NOT_CHECKED)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as failure:  # every operation is tried; failures are reported together
            failures.append(f"{operation.label}: {str(failure)[:2000]}")
    record_property("fuzzed_requests", FUZZED.get(role, 0))  # summed at the end of the run (tests/conftest.py)
    record_property("fuzzed_operations", len(operations))
    assert failures == [], "\n\n".join(failures)
