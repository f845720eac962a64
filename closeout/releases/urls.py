from django.urls import path

from closeout.releases import views

urlpatterns = [
    path("releases/", views.release_page, name="releases"),
]
