from django.urls import path

from trial.releases import views

urlpatterns = [
    path("releases/", views.release_page, name="releases"),
]
