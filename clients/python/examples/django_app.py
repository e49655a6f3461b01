"""An orders API protected by Rampart (Django: the middleware, ``@rampart_required`` and a DRF
view). A one-file project: ``python examples/django_app.py runserver`` or import ``application``."""

import os
import sys

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="example only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    MIDDLEWARE=["rampart_client.django.RampartMiddleware"],
    DATABASES={},
    RAMPART={
        "URL": os.environ.get("RAMPART_URL", "http://127.0.0.1:8080"),
        "AUDIENCE": os.environ.get("RAMPART_AUDIENCE", "rampart"),
        "SERVICE_KEY": os.environ.get("RAMPART_SERVICE_KEY"),
        "INTROSPECTION_TTL": float(os.environ.get("RAMPART_INTROSPECTION_TTL", "2")),
    },
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["rampart_client.django.RampartAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rampart_client.django.RampartPermission"],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from rampart_client.django import principal_of, rampart_required  # noqa: E402


def public(request: HttpRequest) -> HttpResponse:
    who = request.rampart  # type: ignore[attr-defined]
    return JsonResponse({"user": who.id if who else None})


@rampart_required()
def me(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"id": principal_of(request).id})


@rampart_required("orders:write")
def create_order(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"created_by": principal_of(request).id}, status=201)


@rampart_required(online=True)
def live(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"user": principal_of(request).id})


@rampart_required(scopes=["orders:read"])
def reports(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"owner": principal_of(request).id})


class OrdersApi(APIView):
    """DRF: users holding orders:write (from their roles)."""

    rampart_permissions = ("orders:write",)

    def post(self, request: Request) -> Response:
        return Response({"created_by": principal_of(request).id}, status=201)


class ReportsApi(APIView):
    """DRF: API keys holding orders:read."""

    rampart_scopes = ("orders:read",)

    def get(self, request: Request) -> Response:
        return Response({"owner": principal_of(request).id})


urlpatterns = [
    path("public", public),
    path("me", me),
    path("orders", create_order),
    path("orders/live", live),
    path("reports", reports),
    path("api/orders", OrdersApi.as_view()),
    path("api/reports", ReportsApi.as_view()),
]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
