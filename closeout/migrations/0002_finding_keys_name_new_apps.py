from django.db import migrations


class Migration(migrations.Migration):
    """A data-quality finding is keyed by check, record (app.model), id and field, so that a finding
    raises its query once. Findings on moved models are re-keyed with their new app: otherwise the
    next nightly run would raise every one of them again."""

    dependencies = [
        ("closeout", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]interventionpolicy:', '\\1:intervention.interventionpolicy:') WHERE finding_key LIKE '%:participants.interventionpolicy:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]interventionpolicy:', '\\1:participants.interventionpolicy:') WHERE finding_key LIKE '%:intervention.interventionpolicy:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]sessionplan:', '\\1:intervention.sessionplan:') WHERE finding_key LIKE '%:participants.sessionplan:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]sessionplan:', '\\1:participants.sessionplan:') WHERE finding_key LIKE '%:intervention.sessionplan:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]workinghours:', '\\1:intervention.workinghours:') WHERE finding_key LIKE '%:participants.workinghours:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]workinghours:', '\\1:participants.workinghours:') WHERE finding_key LIKE '%:intervention.workinghours:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]extraslot:', '\\1:intervention.extraslot:') WHERE finding_key LIKE '%:participants.extraslot:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]extraslot:', '\\1:participants.extraslot:') WHERE finding_key LIKE '%:intervention.extraslot:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]leave:', '\\1:intervention.leave:') WHERE finding_key LIKE '%:participants.leave:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]leave:', '\\1:participants.leave:') WHERE finding_key LIKE '%:intervention.leave:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]holiday:', '\\1:intervention.holiday:') WHERE finding_key LIKE '%:participants.holiday:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]holiday:', '\\1:participants.holiday:') WHERE finding_key LIKE '%:intervention.holiday:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]session:', '\\1:intervention.session:') WHERE finding_key LIKE '%:participants.session:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]session:', '\\1:participants.session:') WHERE finding_key LIKE '%:intervention.session:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]sessionrecord:', '\\1:intervention.sessionrecord:') WHERE finding_key LIKE '%:participants.sessionrecord:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]sessionrecord:', '\\1:participants.sessionrecord:') WHERE finding_key LIKE '%:intervention.sessionrecord:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]prescription:', '\\1:intervention.prescription:') WHERE finding_key LIKE '%:participants.prescription:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]prescription:', '\\1:participants.prescription:') WHERE finding_key LIKE '%:intervention.prescription:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]walk:', '\\1:intervention.walk:') WHERE finding_key LIKE '%:participants.walk:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):intervention[.]walk:', '\\1:participants.walk:') WHERE finding_key LIKE '%:intervention.walk:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]safetypolicy:', '\\1:safety.safetypolicy:') WHERE finding_key LIKE '%:participants.safetypolicy:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):safety[.]safetypolicy:', '\\1:participants.safetypolicy:') WHERE finding_key LIKE '%:safety.safetypolicy:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]adverseevent:', '\\1:safety.adverseevent:') WHERE finding_key LIKE '%:participants.adverseevent:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):safety[.]adverseevent:', '\\1:participants.adverseevent:') WHERE finding_key LIKE '%:safety.adverseevent:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):participants[.]aefollowup:', '\\1:safety.aefollowup:') WHERE finding_key LIKE '%:participants.aefollowup:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):safety[.]aefollowup:', '\\1:participants.aefollowup:') WHERE finding_key LIKE '%:safety.aefollowup:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):followup[.]message:', '\\1:messaging.message:') WHERE finding_key LIKE '%:followup.message:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):messaging[.]message:', '\\1:followup.message:') WHERE finding_key LIKE '%:messaging.message:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):trial[.]databaselock:', '\\1:closeout.databaselock:') WHERE finding_key LIKE '%:trial.databaselock:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):closeout[.]databaselock:', '\\1:trial.databaselock:') WHERE finding_key LIKE '%:closeout.databaselock:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):trial[.]release:', '\\1:closeout.release:') WHERE finding_key LIKE '%:trial.release:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):closeout[.]release:', '\\1:trial.release:') WHERE finding_key LIKE '%:closeout.release:%'",
        ),
        migrations.RunSQL(
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):trial[.]dataquery:', '\\1:closeout.dataquery:') WHERE finding_key LIKE '%:trial.dataquery:%'",
            "UPDATE trial_dataquery SET finding_key = regexp_replace(finding_key, '^([^:]*):closeout[.]dataquery:', '\\1:trial.dataquery:') WHERE finding_key LIKE '%:closeout.dataquery:%'",
        ),
    ]
