from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self) -> None:
        from participants import records

        records.register(
            {
                "safety.safetypolicy": records.CONFIGURATION,
                # One reported at a session opens like any other, its session fields hidden from
                # blinded roles (participants.blinding.BLINDED_FIELDS): a 404 would tell the arm.
                "safety.adverseevent": records.clinical(),
                "safety.aefollowup": records.clinical(),
            }
        )
