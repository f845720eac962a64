from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import selectors, services
from trial.errors import ApplicationError
from trial.models import RoleCode, StaffProfile


class Command(BaseCommand):
    help = "Create a staff member with a role and sites."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=RoleCode.values)
        parser.add_argument("--site", action="append", default=[], dest="sites", help="Site code; repeat for more.")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--otp-secret",
            default="",
            metavar="BASE32",
            help="Provision a confirmed TOTP device with this base32 secret (for automation); sign-in then needs its codes.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            trial = selectors.trial_get_current()
            user = services.staff_create(
                trial=trial,
                username=options["username"],
                role=options["role"],
                password=options["password"],
                site_codes=options["sites"],
                email=options["email"],
                otp_secret=options["otp_secret"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        profile = StaffProfile.objects.get(user_id=user.pk)
        sites = ", ".join(sorted(profile.sites.values_list("code", flat=True))) or "all sites"
        self.stdout.write(f"Created {user.get_username()} as {options['role']} ({sites}).")
        if options["otp_secret"]:
            self.stdout.write("Two-factor authentication is on: sign-in needs the current code for that secret.")
