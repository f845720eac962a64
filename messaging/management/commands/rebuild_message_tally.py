from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from messaging import services


class Command(BaseCommand):
    help = (
        "Count the messages again into the tally the messages list pages by. Needed only after rows were loaded "
        "with triggers off (a restore with --disable-triggers, say); safe to run at any time."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = services.message_tally_rebuild()
        self.stdout.write(f"tally rebuilt: {rows} rows")
