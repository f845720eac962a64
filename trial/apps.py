from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial configuration"

    def ready(self) -> None:
        from django.urls import register_converter

        from trial import audit, checks  # noqa: F401 - registers the system checks
        from trial.converters import IdConverter

        register_converter(IdConverter, "id")  # before any URLconf that uses <id:...> is imported

        audit.connect_signals()
        _error_messages_never_echo_the_input()
        post_migrate.connect(_sync_periodic_tasks, sender=self)
        post_migrate.connect(_chain_audit_tables, sender=self)


def _sync_periodic_tasks(**kwargs: object) -> None:
    from trial.services import periodic_tasks_sync

    periodic_tasks_sync()


def _chain_audit_tables(**kwargs: object) -> None:
    # Event tables created by any app's migrations (now or in future) join the hash chain.
    from trial.auditchain import audit_chain_install

    audit_chain_install()


def _error_messages_never_echo_the_input() -> None:
    """Django's and DRF's messages for a wrong choice or unknown id repeat what was sent ('"<a very
    long or hostile value>" is not a valid choice.'): ours say what is wrong without it, for forms
    and API alike. Set once here, for every field that does not override them."""
    from django import forms
    from rest_framework import relations, serializers

    for field in (serializers.ChoiceField, serializers.MultipleChoiceField):
        field.default_error_messages = {**field.default_error_messages, "invalid_choice": "Not one of the allowed choices."}
    relations.PrimaryKeyRelatedField.default_error_messages = {
        **relations.PrimaryKeyRelatedField.default_error_messages,
        "does_not_exist": "No such object.",
    }
    relations.SlugRelatedField.default_error_messages = {
        **relations.SlugRelatedField.default_error_messages,
        "does_not_exist": "No such object.",
    }
    for form_field in (forms.ChoiceField, forms.MultipleChoiceField, forms.TypedChoiceField, forms.TypedMultipleChoiceField):
        form_field.default_error_messages = {
            **form_field.default_error_messages,
            "invalid_choice": "Select a valid choice: that is not one of the available choices.",
        }
    forms.ModelMultipleChoiceField.default_error_messages = {
        **forms.ModelMultipleChoiceField.default_error_messages,
        "invalid_choice": "Select a valid choice: that is not one of the available choices.",
        "invalid_pk_value": "Not a valid value.",
    }
