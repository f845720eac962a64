from django.urls import path

from safety import views

urlpatterns = [
    path("safety/", views.safety_overview, name="safety-overview"),
    path("safety/events/", views.event_list, name="adverse-event-list"),
    path("safety/events/<id:pk>/", views.event_detail, name="adverse-event-detail"),
    path("safety/events/<id:pk>/edit/", views.event_edit, name="adverse-event-edit"),
    path("safety/events/<id:pk>/followups/", views.event_followup, name="adverse-event-followup"),
    path("safety/events/<id:pk>/dismiss/", views.event_dismiss, name="adverse-event-dismiss"),
    path("participants/<id:pk>/adverse-events/new/", views.event_new, name="adverse-event-new"),
]
