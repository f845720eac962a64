from django.apps import AppConfig


class CloseoutConfig(AppConfig):
    name = "closeout"
    verbose_name = "Close-out: data queries, database lock and releases"

    def ready(self) -> None:
        from participants import records

        records.register(
            {
                "closeout.databaselock": records.TRIAL_WIDE,
                "closeout.release": records.TRIAL_WIDE,
                "closeout.dataquery": records.clinical(queries=False),
            }
        )
