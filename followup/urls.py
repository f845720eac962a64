from django.urls import path

from followup import views

urlpatterns = [
    path("link/", views.link_request, name="link-request"),
    path("p/<str:token>/", views.home, name="participant-home"),
    path("p/<str:token>/q/<id:pk>/", views.questionnaire, name="questionnaire"),
    path("p/<str:token>/q/<id:pk>/step/<id:number>/", views.questionnaire_step, name="questionnaire-step"),
    path("p/<str:token>/q/<id:pk>/review/", views.questionnaire_review, name="questionnaire-review"),
    path("p/<str:token>/q/<id:pk>/thanks/", views.thanks, name="questionnaire-thanks"),
    path("p/<str:token>/stop/<str:channel>/", views.opt_out, name="opt-out"),
    path("participants/<id:pk>/access-link/", views.staff_issue_link, name="participant-issue-link"),
    path("participants/<id:pk>/calls/", views.call_record, name="followup-call-record"),
    path("participants/<id:pk>/questionnaires/<id:occurrence_pk>/enter/", views.staff_entry, name="followup-staff-entry"),
    path("participants/<id:pk>/outcomes/", views.participant_outcomes, name="participant-outcomes"),
    path("participants/<id:pk>/outcomes/<str:code>/adjudicate/", views.outcome_adjudicate, name="participant-outcome-adjudicate"),
]
