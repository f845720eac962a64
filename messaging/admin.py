"""Admin for how participants are contacted: the message policy and the wordings."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from messaging import services
from messaging.models import MessagePolicy, MessageTemplate
from trial.admin import ConfigurationAdmin


@admin.register(MessagePolicy)
class MessagePolicyAdmin(ConfigurationAdmin):
    """One per trial, from its preset: edited here, never added or deleted."""

    list_display = ["trial", "send_hour", "quiet_start", "quiet_end", "channels", "max_attempts"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ConfigurationAdmin):
    """A published wording never changes: publishing one adds the next version, which every
    message sent from then on uses."""

    list_display = ["code", "channel", "language", "version", "subject", "published_at"]
    list_filter = ["code", "channel", "language"]
    fields = ["trial", "code", "channel", "language", "subject", "body"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and self._allowed(request)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if "language" in form.base_fields:
            form.base_fields["language"].required = False  # blank: the site's language
        return form

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        data = form.cleaned_data
        published = services.message_template_publish(
            trial=data["trial"],
            code=data["code"],
            channel=data["channel"],
            subject=data["subject"],
            body=data["body"],
            language=data["language"],
        )
        obj.pk = published.pk  # the row the service wrote: admin's log and redirect name it
