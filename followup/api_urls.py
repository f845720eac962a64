from django.urls import path

from followup import api

urlpatterns = [
    path("participants/<id:pk>/schedule/", api.ParticipantSchedule.as_view(), name="api-participant-schedule"),
]
