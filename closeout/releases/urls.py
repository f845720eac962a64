from django.urls import path

from closeout.releases import views

urlpatterns = [
    path("releases/", views.release_page, name="releases"),
    path("releases/<id:pk>/retry/", views.release_retry_page, name="release-retry"),
    path("releases/analysis/", views.release_analysis_page, name="release-analysis"),
]
