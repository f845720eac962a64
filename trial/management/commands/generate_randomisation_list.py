from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial import access, selectors, services
from trial.access import Perm
from trial.errors import ApplicationError


def statistician(username: str) -> Any:
    """The user running a list command must hold the randomisation-list permission."""
    trial = selectors.trial_get_current()
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not access.has_perm(user, Perm.MANAGE_RANDOMISATION_LIST, trial=trial):
        raise CommandError(f"'{username}' is not a statistician of {trial.name}: only the statistician manages the list.")
    return user


class Command(BaseCommand):
    help = (
        "Generate (or extend) the sealed permuted-block randomisation list of every stratum from a secret seed. "
        "Prints counts only: the list and the seed are never shown."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The statistician's username (recorded in the audit trail).")
        parser.add_argument("--per-stratum", type=int, default=200, help="Slots to add to each stratum (whole blocks).")
        parser.add_argument("--seed-file", type=Path, help="A file holding the secret seed (else you are prompted).")
        parser.add_argument("--seed", help="The secret seed (visible to other users of this machine; prefer --seed-file).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = statistician(options["user"])
        if options["seed"]:
            seed = options["seed"]
        elif options["seed_file"]:
            seed = options["seed_file"].read_text().strip()
        else:
            seed = getpass.getpass("Secret seed (not echoed): ")
        try:
            created = services.randomisation_list_generate(
                trial=selectors.trial_get_current(), seed=seed, per_stratum=options["per_stratum"], by=user.get_username()
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Randomisation list {created.pk}: {created.slots_created} sealed slots added "
            f"(at least {options['per_stratum']} per stratum, in whole blocks). Keep the seed safe; it is not stored."
        )
