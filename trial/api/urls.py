from django.urls import path

from trial.api import views

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("trial/", views.TrialView.as_view(), name="api-trial"),
    path("me/", views.MeView.as_view(), name="api-me"),
]
