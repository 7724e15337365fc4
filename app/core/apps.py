from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every project built on this template keeps: probes, runtime info, the favicon."""

    name = "core"
    verbose_name = "Core"
