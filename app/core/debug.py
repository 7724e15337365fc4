"""Development helpers, used only with DJANGO_DEBUG_TOOLBAR=true (config/settings.py)."""

from django.conf import settings
from django.http import HttpRequest


def show_toolbar(request: HttpRequest) -> bool:
    """django-debug-toolbar's own check wants the client in INTERNAL_IPS, but behind nginx every
    request comes from nginx's container: show it whenever DEBUG is on."""
    return settings.DEBUG
