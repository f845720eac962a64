"""The database-level guard: while the trial's database is locked, any statement that writes a
clinical table is refused, whatever path it came by (services, admin, raw SQL, psql). The
services refuse first, with a clear message (trial.guard); this catches what bypasses them.

A row-level trigger: a statement that changes no row (a sweep that skips a locked trial) passes;
the check is one lookup in the one-row trial table. An installation runs one trial, so "locked"
means its trial's lock.

The table list and the SQL are written out here, as they were when this migration was made (they
were once imported from trial.lockguard): a later edit of trial.lockguard never changes what this
migration does. A new clinical table gets its trigger in a new migration, written out the same way.
"""

from django.db import migrations

GUARDED_TABLES = (
    "participants_screening",
    "participants_participant",
    "participants_participantstratum",
    "participants_consent",
    "participants_contactdetails",
    "participants_withdrawal",
    "participants_unblinding",
    "participants_session",
    "participants_sessionrecord",
    "participants_prescription",
    "participants_walk",
    "participants_adverseevent",
    "participants_aefollowup",
    "followup_occurrence",
    "followup_questionnaireresponse",
    "followup_outcome",
    "followup_outcomesummary",
    "followup_calllog",
    "trial_allocation",
    "trial_dataquery",
)

FUNCTION = """
CREATE OR REPLACE FUNCTION walkback_refuse_when_locked() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM trial_trial WHERE data_locked_at IS NOT NULL) THEN
        RAISE EXCEPTION 'The trial database is locked: % cannot change.', TG_TABLE_NAME
            USING ERRCODE = 'WB423', HINT = 'Unlock the database, with a reason and a signature, to change data.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""

CREATE_SQL = [FUNCTION]
for _table in GUARDED_TABLES:
    CREATE_SQL.append(f"DROP TRIGGER IF EXISTS walkback_lock_guard ON {_table};")
    CREATE_SQL.append(
        f"CREATE TRIGGER walkback_lock_guard BEFORE INSERT OR UPDATE OR DELETE ON {_table} "
        "FOR EACH ROW EXECUTE FUNCTION walkback_refuse_when_locked();"
    )

DROP_SQL = [f"DROP TRIGGER IF EXISTS walkback_lock_guard ON {_table};" for _table in GUARDED_TABLES] + [
    "DROP FUNCTION IF EXISTS walkback_refuse_when_locked();"
]


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0003_lock_releases_queries"),
        ("participants", "0005_safety_outcomes"),
        ("followup", "0007_safety_outcomes"),
    ]

    operations = [migrations.RunSQL(CREATE_SQL, DROP_SQL)]
