"""The demo's URLs plus views that submit unique-key tasks."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.urls import urlpatterns as demo
from slowjobs.responses import submit
from slowjobs.web.uploads import keep_upload
from tests import tasks


@csrf_exempt
def sync(request: HttpRequest) -> HttpResponse:
    return submit(request, tasks.sync_account, int(request.POST["account"]))


@csrf_exempt
def sync_upload(request: HttpRequest) -> HttpResponse:
    name = keep_upload(request.FILES["file"])
    account = int(request.POST["account"])
    return submit(request, tasks.sync_account, account, input_file=name)


urlpatterns = [
    path("sync/", sync),
    path("sync-upload/", sync_upload),
    *demo,
]
