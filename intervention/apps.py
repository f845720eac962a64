from django.apps import AppConfig


class InterventionConfig(AppConfig):
    name = "intervention"
    verbose_name = "Intervention"

    def ready(self) -> None:
        from intervention.messages import SessionMessages
        from messaging import kinds

        kinds.register(SessionMessages())
