from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from closeout import flow


class Command(BaseCommand):
    help = (
        "Write each randomised participant's CONSORT flow row again (what the CONSORT and DMC reports count). Needed "
        "only after rows were loaded with triggers off (a restore with --disable-triggers, say); safe to run at any time."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = flow.participant_flow_rebuild()
        self.stdout.write(f"flow rebuilt: {rows} participants")
