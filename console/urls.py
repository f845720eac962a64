"""Routes of the pages that combine features (paths and names unchanged since they lived in the apps below)."""

from django.urls import path

from console import participant_views, report_views, views, worklist

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("history/<str:app_label>/<str:model_name>/<id:pk>/", views.record_history, name="record-history"),
    path("participants/<id:pk>/", participant_views.participant_detail, name="participant-detail"),
    path("participants/<id:pk>/reconsent/", participant_views.participant_reconsent, name="participant-reconsent"),
    path("participants/<id:pk>/randomise/", participant_views.participant_randomise, name="participant-randomise"),
    path("participants/<id:pk>/withdraw/", participant_views.participant_withdraw, name="participant-withdraw"),
    path("participants/<id:pk>/unblind/", participant_views.participant_unblind, name="participant-unblind"),
    path("followup/worklist/", worklist.worklist, name="followup-worklist"),
    path("reports/consort/", report_views.consort, name="report-consort"),
    path("reports/consort.csv", report_views.consort_csv, name="report-consort-csv"),
    path("reports/dmc/", report_views.dmc_report, name="report-dmc"),
    path("reports/status/", report_views.status_grid, name="report-status-grid"),
    path("reports/status.csv", report_views.status_grid_csv, name="report-status-grid-csv"),
]
