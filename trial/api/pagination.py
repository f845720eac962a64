from __future__ import annotations

from typing import Any, cast

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class Pagination(PageNumberPagination):
    """Pages of 50 by default; ``page_size`` from 1 to 500. A ``page_size`` that is not one whole
    number in that range is a 400 on the parameter (DRF's own would quietly use the default)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int | None:
        values = request.query_params.getlist(self.page_size_query_param)
        if not values:
            return self.page_size
        if len(values) > 1 or not values[0].isascii() or not values[0].isdigit() or not 1 <= int(values[0]) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}, once."]})
        return int(values[0])

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        if len(request.query_params.getlist(self.page_query_param)) > 1:
            raise ValidationError({self.page_query_param: ["Give one page number."]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {**parameter["schema"], "minimum": 1, "maximum": self.max_page_size}
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters


class CountedPagination(Pagination):
    """``Pagination`` whose total the view gives (``view.row_count()``, from kept counts, say)
    instead of counting the rows of its queryset. A page past the middle is read from the end, in
    the reverse order, so the last page costs what the first does (an offset of 1.5 million
    messages took 1.8 s); the queryset's order must be total (ending in its key)."""

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        count = view.row_count()

        class GivenCount(Paginator):
            def __init__(self, object_list: Any, per_page: int, **kwargs: Any) -> None:
                super().__init__(object_list, per_page, **kwargs)
                self.__dict__["count"] = count  # Paginator.count is a cached_property

            def page(self, number: Any) -> Any:
                number = self.validate_number(number)
                bottom = (number - 1) * self.per_page
                top = min(bottom + self.per_page, count)
                if bottom <= count // 2:
                    return super().page(number)
                rows = list(cast(QuerySet[Any], self.object_list).reverse()[count - top : count - bottom])
                return Page(rows[::-1], number, self)

        self.django_paginator_class = GivenCount
        return super().paginate_queryset(queryset, request, view)
