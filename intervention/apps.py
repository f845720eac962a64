from django.apps import AppConfig


class InterventionConfig(AppConfig):
    name = "intervention"
    verbose_name = "Intervention"

    def ready(self) -> None:
        from intervention.messages import SessionMessages
        from intervention.views import home_section
        from messaging import kinds
        from participants import hooks, records

        kinds.register(SessionMessages())
        hooks.on_home_section(home_section)
        # Only the intervention arm has sessions, prescriptions and a diary: each reveals the arm.
        records.register(
            {
                **dict.fromkeys(
                    ["intervention.session", "intervention.sessionrecord", "intervention.prescription", "intervention.walk"],
                    records.clinical(reveals_arm=True),
                ),
                **dict.fromkeys(
                    [
                        "intervention.interventionpolicy",
                        "intervention.sessionplan",
                        "intervention.workinghours",
                        "intervention.extraslot",
                        "intervention.leave",
                        "intervention.holiday",
                    ],
                    records.CONFIGURATION,
                ),
            }
        )
