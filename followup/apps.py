from django.apps import AppConfig


class FollowupConfig(AppConfig):
    name = "followup"
    verbose_name = "Follow-up"

    def ready(self) -> None:
        from followup.messages import QuestionnaireMessages
        from messaging import kinds

        kinds.register(QuestionnaireMessages())
