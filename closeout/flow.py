"""The CONSORT flow's rows (``ParticipantFlow``): counted again from the rows they are read from."""

from __future__ import annotations

from django.db import connection, transaction

from followup.models import OutcomeCode
from intervention.models import SessionStatus

# Every randomised participant's row written afresh (the table must be empty first): the same
# reckoning as the triggers' (migration 0005), for every participant at once.
PARTICIPANT_FLOW_FILL_SQL = f"""
    INSERT INTO closeout_participantflow (participant_id, site_id, arm_id, withdrawal_scope, analysed, received_intervention)
    SELECT p.id, p.site_id, a.arm_id, p.withdrawal_scope,
        p.id IN (SELECT participant_id FROM followup_outcome WHERE code = '{OutcomeCode.ACTIVITY_LIMITING.value}'),
        p.id IN (SELECT participant_id FROM participants_session WHERE status = '{SessionStatus.ATTENDED.value}')
    FROM participants_participant AS p JOIN trial_allocation AS a ON a.participant_id = p.id
    WHERE p.randomised_at IS NOT NULL
"""  # noqa: S608 (constants, no input)

FLOW_TABLES = ("participants_participant", "trial_allocation", "followup_outcome", "participants_session")


@transaction.atomic
def participant_flow_rebuild() -> int:
    """Write every randomised participant's flow row again from the participants, allocations,
    outcomes and sessions, for when the triggers were skipped (a restore or bulk load with triggers
    off); writes to those tables wait until it commits. Returns the number of rows."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {', '.join(FLOW_TABLES)} IN SHARE MODE")
        cursor.execute("DELETE FROM closeout_participantflow")
        cursor.execute(PARTICIPANT_FLOW_FILL_SQL)
        return cursor.rowcount
