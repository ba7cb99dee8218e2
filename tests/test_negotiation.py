"""The quick answer to Accept agrees with Django's content negotiation."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from slowjobs.web.responses import wants_json


@pytest.mark.parametrize(
    "accept",
    [
        "",
        "*/*",
        "application/json",
        "text/html",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/json, text/plain, */*",
        "application/json;q=0.5, text/html;q=0.4",
    ],
)
def test_the_quick_answer_to_accept_is_django_s(accept):
    request = RequestFactory().get("/", HTTP_ACCEPT=accept)
    if not accept:
        del request.META["HTTP_ACCEPT"]
    django_says = request.get_preferred_type(["text/html", "application/json"])
    assert wants_json(request) == (django_says == "application/json")
