"""URL configuration of the sample project."""

from django.contrib import admin
from django.urls import include, path

from bundle_sample import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("whoami", views.whoami, name="whoami"),
    path("private/", views.private, name="private"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
