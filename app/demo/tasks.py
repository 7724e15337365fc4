import time
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from demo.models import TaskRun

BEAT_TICK_CACHE_KEY = "demo:beat:last-tick"
TASK_RUN_RETENTION = timedelta(days=7)


@shared_task(bind=True)
def sleep_task(self, run_id: str) -> None:
    """Sleep for the run's seconds, then record which worker did it.

    Idempotent: a redelivered message (after a worker died mid-task) just runs it again, and a
    run already recorded as done is left alone.
    """
    run = TaskRun.objects.filter(pk=run_id).first()
    if run is None or run.status == TaskRun.Status.SUCCEEDED:
        return
    TaskRun.objects.filter(pk=run_id).update(
        status=TaskRun.Status.RUNNING, worker=self.request.hostname, started_at=timezone.now()
    )
    time.sleep(run.seconds)
    TaskRun.objects.filter(pk=run_id).update(
        status=TaskRun.Status.SUCCEEDED, finished_at=timezone.now()
    )


@shared_task
def beat_tick() -> int:
    """Beat's periodic task: forget old demo runs and leave a timestamp for the status page."""
    deleted, _ = TaskRun.objects.filter(created_at__lt=timezone.now() - TASK_RUN_RETENTION).delete()
    cache.set(BEAT_TICK_CACHE_KEY, timezone.now().isoformat(), timeout=None)
    return deleted
