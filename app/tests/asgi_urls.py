"""Views of the ASGI tests' own (tests/test_asgi.py), so that the tests hold whatever URLs and
apps a project has: each exercises one thing the middleware does."""

import threading

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

_this_thread = threading.local()


class ThirdPartyMiddleware(MiddlewareMixin):
    """An old-style middleware as apps ship them: Django calls its hook in a thread."""

    def process_request(self, request: HttpRequest) -> None:
        request.seen_by_third_party = True


def form_page(request: HttpRequest) -> HttpResponse:
    """A page with a form: it sets the CSRF cookie, as any page with a form does."""
    return HttpResponse(f"<form method=post><input name=t value={get_token(request)}></form>")


def requests_served_by_this_thread(request: HttpRequest) -> JsonResponse:
    _this_thread.served = getattr(_this_thread, "served", 0) + 1
    return JsonResponse({"served": _this_thread.served})


def count_visits(request: HttpRequest) -> HttpResponse:
    """Modifies the session, so its middleware saves it (a database write) on the way out."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


def add_message(request: HttpRequest) -> HttpResponse:
    messages.info(request, "saved")
    return HttpResponse("ok")


urlpatterns = [
    path("form/", form_page),
    path("thread/", requests_served_by_this_thread),
    path("visit/", count_visits),
    path("message/", add_message),
]
