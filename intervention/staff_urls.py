from django.urls import path

from intervention import staff_views

urlpatterns = [
    path("sessions/agenda/", staff_views.agenda, name="intervention-agenda"),
    path("sessions/availability/", staff_views.availability, name="intervention-availability"),
    path("sessions/availability/leave/<id:pk>/remove/", staff_views.leave_remove, name="intervention-leave-remove"),
    path("sessions/availability/extra/<id:pk>/remove/", staff_views.extra_slot_remove, name="intervention-extra-remove"),
    path("sessions/<id:pk>/book/", staff_views.book, name="intervention-book"),
    path("sessions/<id:pk>/cancel/", staff_views.cancel, name="intervention-cancel"),
    path("sessions/<id:pk>/record/", staff_views.record, name="intervention-record"),
]
