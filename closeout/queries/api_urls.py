from django.urls import path

from closeout.queries import api

urlpatterns = [
    path("queries/", api.QueryListCreate.as_view(), name="api-queries"),
    path("queries/<id:pk>/", api.QueryDetail.as_view(), name="api-query"),
    path("queries/<id:pk>/answer/", api.QueryAnswer.as_view(), name="api-query-answer"),
    path("queries/<id:pk>/close/", api.QueryClose.as_view(), name="api-query-close"),
    path("queries/<id:pk>/reopen/", api.QueryReopen.as_view(), name="api-query-reopen"),
    path("lock/", api.LockView.as_view(), name="api-lock"),
    path("lock/unlock/", api.UnlockView.as_view(), name="api-lock-unlock"),
]
