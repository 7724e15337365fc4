from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("demo.urls")),  # demo
]

# Only with DJANGO_DEBUG=true (otherwise empty): Django serves static files itself, as when
# running without nginx.
urlpatterns += staticfiles_urlpatterns()

if settings.DEBUG_TOOLBAR:
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()
