"""SQL for the database-level lock guard (see migration 0004_refuse_writes_when_locked, which holds
its own frozen copy: migrations never import this module)."""

from __future__ import annotations

# Clinical tables: what a locked dataset is made of. A new clinical table is added here and in a
# new migration that writes out the SQL create_sql([...]) gives for it (no import of this module).
GUARDED_TABLES: tuple[str, ...] = (
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

SQLSTATE = "WB423"  # raised by the guard (FUNCTION below); mapped to a clear refusal

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


def create_sql(tables: tuple[str, ...] | list[str]) -> list[str]:
    statements = [FUNCTION]
    for table in tables:
        statements.append(f"DROP TRIGGER IF EXISTS walkback_lock_guard ON {table};")
        statements.append(
            f"CREATE TRIGGER walkback_lock_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION walkback_refuse_when_locked();"
        )
    return statements


def drop_sql(tables: tuple[str, ...] | list[str]) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS walkback_lock_guard ON {table};" for table in tables] + [
        "DROP FUNCTION IF EXISTS walkback_refuse_when_locked();"
    ]
