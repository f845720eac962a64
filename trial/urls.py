from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from trial import views
from trial.health import HealthView

urlpatterns = [
    path("", include("console.urls")),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/two-factor/", views.two_factor, name="two_factor"),
    path("audit/", views.audit_log, name="audit-log"),
    path("", include("participants.urls")),
    path("", include("intervention.staff_urls")),
    path("", include("followup.urls")),
    path("", include("intervention.urls")),
    path("", include("safety.urls")),
    path("", include("closeout.queries.urls")),
    path("", include("closeout.releases.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("trial.api.urls")),
    path("api/v1/", include("participants.api_urls")),
    path("api/v1/", include("followup.api_urls")),
    path("api/v1/", include("intervention.api_urls")),
    path("api/v1/", include("safety.api_urls")),
    path("api/v1/", include("closeout.queries.api_urls")),
    path("api/v1/", include("closeout.releases.api_urls")),
    path("api/v1/", include("console.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: the page and its start-up script are two requests, so the CSP needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html"), name="api-docs"),
    path(
        "health/",
        HealthView.as_view(checks=["health_check.checks.Database", "trial.health.Broker"]),
        name="health",
    ),
]

handler400 = "trial.errorviews.bad_request"
handler403 = "trial.errorviews.permission_denied"
handler404 = "trial.errorviews.page_not_found"
handler500 = "trial.errorviews.server_error"
