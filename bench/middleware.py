"""Used only by ``bench.settings`` (the web processes of ``bench_pages``)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse

from bench.reminders import QueryCounter


class QueryCountMiddleware:
    """``X-Bench-Queries``: how many SQL statements the request ran, the middleware's own (session,
    user, second factor) included. First in the list, so it counts every other."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        response["X-Bench-Queries"] = str(counter.count)
        return response
