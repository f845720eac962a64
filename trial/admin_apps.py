"""Django admin's app config with our site (``trial.adminsite.TrialAdminSite``) as ``admin.site``.

A module of its own: settings name it in INSTALLED_APPS, so it must import no models.
"""

from django.contrib.admin.apps import AdminConfig


class TrialAdminConfig(AdminConfig):
    default_site = "trial.adminsite.TrialAdminSite"
