"""The admin role stops being a Django superuser (a configuration role, gated by trial.access).

Only staff with an admin-role profile change; a superuser made with createsuperuser has no
profile and stays one (the emergency account). A new security event kind records its uses.
"""

from django.conf import settings
from django.db import migrations, models

KINDS = [
    ("login", "Logged in"),
    ("logout", "Logged out"),
    ("login_failed", "Failed login"),
    ("token_issued", "API token issued"),
    ("role_changed", "Role or sites changed"),
    ("password_changed", "Password changed"),
    ("download", "Download"),
    ("configuration", "Configuration applied"),
    ("superuser", "Superuser (emergency account) used"),
]


def _admin_users(apps):
    User = apps.get_model(settings.AUTH_USER_MODEL)
    StaffProfile = apps.get_model("trial", "StaffProfile")
    return User.objects.filter(pk__in=StaffProfile.objects.filter(role="admin").values("user_id"))


def admins_are_not_superusers(apps, schema_editor):
    _admin_users(apps).filter(is_superuser=True).update(is_superuser=False, is_staff=True)


def admins_are_superusers_again(apps, schema_editor):
    _admin_users(apps).update(is_superuser=True, is_staff=True)


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0006_closeout_to_its_app"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(model_name="securityevent", name="kind", field=models.CharField(choices=KINDS, max_length=20)),
        migrations.AlterField(
            model_name="securityeventevent", name="kind", field=models.CharField(choices=KINDS, max_length=20)
        ),
        migrations.RunPython(admins_are_not_superusers, admins_are_superusers_again),
    ]
