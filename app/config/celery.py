"""The Celery app. Its settings live in config/settings.py under the CELERY_ prefix."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Celery's Django support closes every database connection before and after each task, unless
# CELERY_DB_REUSE_MAX says otherwise (settings.py does): so each task opened a new one, and
# Postgres started a process and both sides computed a SCRAM handshake, about 9 ms of CPU on
# each side for a task that needs 1 (measured on 2 cores). Instead a task is treated as Django
# treats a request: connections older than CONN_MAX_AGE, or broken, are closed, and a kept one is
# checked before its first use (CONN_HEALTH_CHECKS). A task run eagerly (task.apply(), in
# tests) runs inside its caller's request or transaction, and is left alone, as Celery does.
@task_prerun.connect
@task_postrun.connect
def close_old_connections(task, **kwargs) -> None:
    from django.db import close_old_connections

    if not task.request.is_eager:
        close_old_connections()
