from django.urls import path

from intervention import api

urlpatterns = [
    path("sessions/", api.SessionList.as_view(), name="api-sessions"),
    path("sessions/<id:pk>/book/", api.SessionBook.as_view(), name="api-session-book"),
    path("sessions/<id:pk>/cancel/", api.SessionCancel.as_view(), name="api-session-cancel"),
    path("sessions/<id:pk>/record/", api.SessionRecordCreate.as_view(), name="api-session-record"),
    path("physiotherapists/<id:pk>/slots/", api.PhysiotherapistSlots.as_view(), name="api-physiotherapist-slots"),
    path("participants/<id:pk>/diary/", api.ParticipantDiary.as_view(), name="api-participant-diary"),
]
