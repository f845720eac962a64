from django.urls import path

from followup import api

urlpatterns = [
    path("participants/<id:pk>/schedule/", api.ParticipantSchedule.as_view(), name="api-participant-schedule"),
    path("participants/<id:pk>/access-link/", api.ParticipantAccessLink.as_view(), name="api-participant-access-link"),
    path("participants/<id:pk>/responses/", api.ParticipantResponses.as_view(), name="api-participant-responses"),
    path("messages/", api.MessageList.as_view(), name="api-messages"),
    path("participants/<id:pk>/outcomes/", api.ParticipantOutcomes.as_view(), name="api-participant-outcomes"),
    path(
        "participants/<id:pk>/outcomes/<str:code>/adjudicate/",
        api.OutcomeAdjudicate.as_view(),
        name="api-participant-outcome-adjudicate",
    ),
]
