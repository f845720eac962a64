from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self) -> None:
        from participants import records

        records.register(
            {
                "safety.safetypolicy": records.CONFIGURATION,
                # reported from a session: the participant is in the intervention arm
                "safety.adverseevent": records.clinical(reveals_arm=records.about_a_session),
                "safety.aefollowup": records.clinical(),
            }
        )
