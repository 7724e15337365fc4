from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from core import csp

urlpatterns = [
    path("admin/", admin.site.urls),
    # SECURE_CSP's report-uri (settings.CSP_REPORT_PATH).
    path(settings.CSP_REPORT_PATH.lstrip("/"), csp.report, name="csp-report"),
    path("", include("demo.urls")),  # demo
]

# Only with DJANGO_DEBUG=true (otherwise empty): Django serves static files itself, as when
# running without nginx.
urlpatterns += staticfiles_urlpatterns()

if settings.DEBUG_TOOLBAR:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
