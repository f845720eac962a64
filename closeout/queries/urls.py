from django.urls import path

from closeout.queries import views

urlpatterns = [
    path("queries/", views.query_list, name="query-list"),
    path("queries/new/", views.query_new, name="query-new"),
    path("queries/checks/run/", views.checks_run_now, name="query-checks-run"),
    path("queries/<id:pk>/", views.query_detail, name="query-detail"),
    path("queries/<id:pk>/answer/", views.query_answer, name="query-answer"),
    path("queries/<id:pk>/close/", views.query_close, name="query-close"),
    path("queries/<id:pk>/reopen/", views.query_reopen, name="query-reopen"),
    path("quality/missing/", views.missing_data, name="missing-data"),
    path("lock/", views.lock_page, name="lock"),
    path("lock/sign/", views.lock_sign, name="lock-sign"),
    path("lock/unlock/", views.lock_unlock, name="lock-unlock"),
]
