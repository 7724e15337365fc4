"""WSGI entry point, served by gunicorn's sync workers (see config/gunicorn.py)."""

import os

from django.core.wsgi import get_wsgi_application

from config.environment import trusted_proxies
from config.forwarded import ForwardedClient

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# gunicorn leaves REMOTE_ADDR at nginx's address; the visitor's is in X-Forwarded-For.
application = ForwardedClient(get_wsgi_application(), trusted_proxies())
