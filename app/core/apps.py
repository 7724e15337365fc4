from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every project built on this template keeps: probes, runtime info, the favicon, login
    throttling and the CSP report endpoint."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import auth  # noqa: F401  (connects the failed-login receiver)
