from django.apps import AppConfig


class InterventionConfig(AppConfig):
    name = "intervention"
    verbose_name = "Intervention"

    def ready(self) -> None:
        from intervention.messages import SessionMessages
        from intervention.views import home_section
        from messaging import kinds
        from participants import hooks

        kinds.register(SessionMessages())
        hooks.on_home_section(home_section)
