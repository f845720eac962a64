from django.urls import path

from safety import api

urlpatterns = [
    path("adverse-events/", api.AdverseEventListCreate.as_view(), name="api-adverse-events"),
    path("adverse-events/<id:pk>/", api.AdverseEventDetail.as_view(), name="api-adverse-event"),
    path("adverse-events/<id:pk>/dismiss/", api.AdverseEventDismiss.as_view(), name="api-adverse-event-dismiss"),
    path("adverse-events/<id:pk>/followups/", api.AdverseEventFollowUpCreate.as_view(), name="api-adverse-event-followups"),
]
