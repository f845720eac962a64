from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messages"

    def ready(self) -> None:
        from messaging import kinds
        from messaging.links import LinkMessages
        from participants import records

        kinds.register(LinkMessages())

        records.register(
            {
                "messaging.messagepolicy": records.CONFIGURATION,
                "messaging.messagetemplate": records.CONFIGURATION,
                # a message about a session tells that its participant is in the intervention arm
                "messaging.message": records.clinical(reveals_arm=records.about_a_session, queries=False),
            }
        )
