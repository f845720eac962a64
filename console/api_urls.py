from django.urls import path

from console import report_views

urlpatterns = [
    path("reports/consort/", report_views.ConsortReport.as_view(), name="api-report-consort"),
]
