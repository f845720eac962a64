from django.urls import path

from intervention import views

urlpatterns = [
    path("p/<str:token>/sessions/", views.sessions, name="participant-sessions"),
    path("p/<str:token>/sessions/<id:pk>/book/", views.session_book, name="participant-session-book"),
    path("p/<str:token>/diary/", views.diary, name="participant-diary"),
]
