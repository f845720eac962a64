from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial configuration"

    def ready(self) -> None:
        from django.urls import register_converter

        from trial import audit
        from trial.converters import IdConverter

        register_converter(IdConverter, "id")  # before any URLconf that uses <id:...> is imported

        audit.connect_signals()
        post_migrate.connect(_sync_periodic_tasks, sender=self)


def _sync_periodic_tasks(**kwargs: object) -> None:
    from trial.services import periodic_tasks_sync

    periodic_tasks_sync()
