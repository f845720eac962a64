from django.urls import path

from participants import views

urlpatterns = [
    path("screening/", views.screening_log, name="screening-log"),
    path("screening/new/", views.screening_new, name="screening-new"),
    path("screening/<id:pk>/", views.screening_detail, name="screening-detail"),
    path("screening/<id:pk>/decline/", views.screening_decline, name="screening-decline"),
    path("screening/<id:pk>/enrol/", views.screening_enrol, name="screening-enrol"),
    path("participants/", views.participant_list, name="participant-list"),
]
