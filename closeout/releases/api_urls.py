from django.urls import path

from closeout.releases import api

urlpatterns = [
    path("releases/", api.ReleaseListCreate.as_view(), name="api-releases"),
    path("releases/<id:pk>/", api.ReleaseDetail.as_view(), name="api-release"),
    path("releases/<id:pk>/retry/", api.ReleaseRetry.as_view(), name="api-release-retry"),
    path("releases/<id:pk>/download/", api.ReleaseDownload.as_view(), name="api-release-download"),
]
