"""The database-level guard: while the trial's database is locked, any statement that writes a
clinical table is refused, whatever path it came by (services, admin, raw SQL, psql). The
services refuse first, with a clear message (trial.guard); this catches what bypasses them.

A row-level trigger: a statement that changes no row (a sweep that skips a locked trial) passes;
the check is one lookup in the one-row trial table. An installation runs one trial, so "locked"
means its trial's lock.
"""

from django.db import migrations

from trial.lockguard import GUARDED_TABLES, create_sql, drop_sql


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0003_lock_releases_queries"),
        ("participants", "0005_safety_outcomes"),
        ("followup", "0007_safety_outcomes"),
    ]

    operations = [migrations.RunSQL(create_sql(GUARDED_TABLES), drop_sql(GUARDED_TABLES))]
