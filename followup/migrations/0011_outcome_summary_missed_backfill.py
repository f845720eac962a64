"""Fill ``missed_in_a_row`` and the last missed questionnaire of every outcome summary.

A migration of its own: the rows it writes fire deferred triggers (history, audit chain), after
which PostgreSQL refuses to alter the table in the same transaction, and the schema migration
before it creates its foreign key and indexes at its end.
"""

from django.db import migrations

# The missed questionnaires since the latest completed one, for every participant, as
# ``followup.outcomes.summarise`` counts them (the outcome policy's instrument, 'monthly' by
# default); a randomised participant with no summary yet (none answered) gets one.
BACKFILL = [
    """
    INSERT INTO followup_outcomesummary (participant_id, recurrences, care_seeking_recurrences, work_days_missed,
                                         work_days_by_month, monthly_completed, monthly_missed, missed_in_a_row, derived_at)
    SELECT p.id, 0, 0, 0, '{}', 0, 0, 0, now()
      FROM participants_participant p
     WHERE p.randomised_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM followup_outcomesummary su WHERE su.participant_id = p.id)
    """,
    """
    WITH closed AS (
        SELECT o.id, o.participant_id, o.status, o.due_date,
               max(o.due_date) FILTER (WHERE o.status = 'completed') OVER (PARTITION BY o.participant_id) AS latest_completed
          FROM followup_occurrence o
          JOIN participants_participant p ON p.id = o.participant_id
          JOIN trial_site s ON s.id = p.site_id
          LEFT JOIN followup_outcomepolicy op ON op.trial_id = s.trial_id
         WHERE o.status IN ('completed', 'missed') AND o.instrument = coalesce(op.instrument, 'monthly')
    ), since_completed AS (
        SELECT participant_id, count(*) AS missed, max(due_date) AS due,
               (array_agg(id ORDER BY due_date DESC, id DESC))[1] AS last_id
          FROM closed
         WHERE status = 'missed' AND (latest_completed IS NULL OR due_date > latest_completed)
         GROUP BY participant_id
    ), counts AS (
        SELECT participant_id, count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE status = 'missed') AS missed
          FROM closed GROUP BY participant_id
    )
    UPDATE followup_outcomesummary su
       SET missed_in_a_row = coalesce(t.missed, 0), last_missed_id = t.last_id, last_missed_due = t.due,
           monthly_completed = c.completed, monthly_missed = c.missed
      FROM counts c LEFT JOIN since_completed t ON t.participant_id = c.participant_id
     WHERE su.participant_id = c.participant_id
    """,
]



class Migration(migrations.Migration):
    dependencies = [("followup", "0010_outcome_summary_missed_in_a_row")]

    operations = [migrations.RunSQL(BACKFILL, migrations.RunSQL.noop, elidable=True)]
