#!/usr/bin/env python
import os
import sys

# Commands that need no database: with DATABASE_URL unset they run without starting the embedded one.
NO_DATABASE = {"check", "makemigrations", "collectstatic", "findstatic", "diffsettings", "help", "version", "spectacular"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trial.settings")
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if not os.environ.get("DATABASE_URL") and command not in NO_DATABASE and not command.startswith("-"):
        from trial.embedded import ensure_database_url

        # This process holds the embedded server (runserver's reloaded child joins it) until it exits.
        ensure_database_url()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
