"""Admin for what administrators publish: consent document versions. Nothing here shows an arm."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from participants import services
from participants.models import ConsentDocument
from trial.admin import ConfigurationAdmin


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(ConfigurationAdmin):
    """A published version is immutable: publish a new version instead of editing one."""

    list_display = ["version", "title", "published_at"]
    fields = ["trial", "version", "title", "body"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and self._allowed(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        data = form.cleaned_data
        services.consent_document_publish(trial=data["trial"], version=data["version"], title=data["title"], body=data["body"])
