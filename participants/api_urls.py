from django.urls import path

from participants import api

urlpatterns = [
    path("screenings/", api.ScreeningListCreate.as_view(), name="api-screenings"),
    path("screenings/<id:pk>/enrol/", api.ScreeningEnrol.as_view(), name="api-screening-enrol"),
    path("participants/", api.ParticipantList.as_view(), name="api-participants"),
    path("participants/<id:pk>/", api.ParticipantDetail.as_view(), name="api-participant"),
    path("participants/<id:pk>/randomise/", api.ParticipantRandomise.as_view(), name="api-participant-randomise"),
    path("participants/<id:pk>/withdraw/", api.ParticipantWithdraw.as_view(), name="api-participant-withdraw"),
    path("participants/<id:pk>/unblind/", api.ParticipantUnblind.as_view(), name="api-participant-unblind"),
]
