from django.apps import AppConfig


class FollowupConfig(AppConfig):
    name = "followup"
    verbose_name = "Follow-up"

    def ready(self) -> None:
        from followup.messages import QuestionnaireMessages
        from messaging import kinds
        from participants import records

        kinds.register(QuestionnaireMessages())
        # Not listed, so shown to no one: ``responsedraft``, a participant's answers saved step by
        # step before they submit (their own until then; the submitted response is the record).
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
