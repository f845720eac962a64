from django.urls import path

from participants import views

urlpatterns = [
    path("screening/", views.screening_log, name="screening-log"),
    path("screening/new/", views.screening_new, name="screening-new"),
    path("screening/<id:pk>/", views.screening_detail, name="screening-detail"),
    path("screening/<id:pk>/decline/", views.screening_decline, name="screening-decline"),
    path("screening/<id:pk>/enrol/", views.screening_enrol, name="screening-enrol"),
    path("participants/", views.participant_list, name="participant-list"),
    path("participants/<id:pk>/", views.participant_detail, name="participant-detail"),
    path("participants/<id:pk>/reconsent/", views.participant_reconsent, name="participant-reconsent"),
    path("participants/<id:pk>/randomise/", views.participant_randomise, name="participant-randomise"),
    path("participants/<id:pk>/withdraw/", views.participant_withdraw, name="participant-withdraw"),
    path("participants/<id:pk>/unblind/", views.participant_unblind, name="participant-unblind"),
]
