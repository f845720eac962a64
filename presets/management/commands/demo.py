from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from presets import demo


class Command(BaseCommand):
    help = "Set up WalkBack with demo staff (one per role) and print their logins. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        logins = demo.demo_load()
        self.stdout.write("Demo logins (username / password):")
        for login in logins:
            self.stdout.write(f"  {login.username:<14} {login.password:<28} {login.role}{login.sites}")
        second = [login for login in logins if login.otp_secret]
        if second:
            self.stdout.write(
                "These roles sign in with a second factor: add the secret (or open the otpauth:// URI) in any "
                "authenticator app and type its current code in the login form's code field."
            )
            for login in second:
                self.stdout.write(f"  {login.username:<14} TOTP secret {login.otp_secret}")
                self.stdout.write(f"  {'':<14} {login.otpauth_uri}")
