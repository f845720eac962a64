from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

# What the application's role may do: read and write rows, use sequences, run the triggers'
# functions. Never: own a table (so no ALTER TABLE ... DISABLE TRIGGER, no DROP), TRUNCATE, set
# session_replication_role (superusers only), or change an audit row (UPDATE/DELETE revoked on
# every event table and on the chain head, which the trigger writes as the owner).
GRANTS = """
GRANT CONNECT ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role};
REVOKE INSERT, UPDATE, DELETE ON audit_chain_head FROM {role};
"""


class Command(BaseCommand):
    help = (
        "Create (if missing) and grant the application's database role: one that owns no table and so cannot "
        "disable triggers. Run as the owner (the role migrations run as), after every migrate; web, worker and "
        "beat then connect as the application role (README 'Database roles')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="The application's role, e.g. walkback_app.")
        parser.add_argument(
            "--password-env",
            default="DATABASE_APP_PASSWORD",
            help="Environment variable holding its password, used when the role is created (default DATABASE_APP_PASSWORD).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role = options["role"]
        q = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), current_schema()")
            owner, database, schema = cursor.fetchone()
            if role == owner:
                raise CommandError("The application's role must not be the owner the migrations run as.")
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
            found = cursor.fetchone()
            if found is None:
                password = os.environ.get(options["password_env"], "")
                if not password:
                    raise CommandError(f"Role {role} does not exist: set {options['password_env']} to create it.")
                cursor.execute(
                    f"CREATE ROLE {q(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %s", [password]
                )
                self.stdout.write(f"Created role {role}.")
            elif found[0]:
                raise CommandError(f"Role {role} is a superuser: it could turn triggers off. Use a plain role.")
            cursor.execute(GRANTS.format(database=q(database), schema=q(schema), role=q(role)))
            cursor.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
                "AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'row_hash')"
            )
            events = [row[0] for row in cursor.fetchall()]
            for table in events:
                cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {q(table)} FROM {q(role)}")
        self.stdout.write(f"Granted {role} on {database} (owner {owner}); audit rows insert-only for it ({len(events)} tables).")
