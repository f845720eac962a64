from django.apps import AppConfig


class FollowupConfig(AppConfig):
    name = "followup"
    verbose_name = "Follow-up"

    def ready(self) -> None:
        from followup.messages import QuestionnaireMessages
        from messaging import kinds
        from participants import records

        kinds.register(QuestionnaireMessages())
        records.register(
            {
                **dict.fromkeys(
                    ["followup.schedulerule", "followup.instrumentversion", "followup.outcomepolicy"], records.CONFIGURATION
                ),
                **dict.fromkeys(
                    [
                        "followup.occurrence",
                        "followup.questionnaireresponse",
                        "followup.calllog",
                        "followup.outcome",
                        "followup.outcomesummary",
                    ],
                    records.clinical(),
                ),
            }
        )
