import time
from datetime import timedelta

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from demo import events
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
    run.worker, run.started_at = self.request.hostname, timezone.now()
    # A run that takes time is shown running, with its progress; an instant one is recorded once,
    # when it is done (one write and one message instead of two of each).
    if run.seconds > 0:
        run.status = TaskRun.Status.RUNNING
        run.save(update_fields=["status", "worker", "started_at"])
        events.publish(run_id, run.as_json() | {"progress": 0.0})

        # Sleep in steps of at most a second, telling listeners how far along it is.
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < run.seconds:
            time.sleep(min(1.0, run.seconds - elapsed))
            progress = min(1.0, (time.monotonic() - started) / run.seconds)
            if progress < 1.0:
                events.publish(run_id, run.as_json() | {"progress": round(progress, 2)})

    run.status, run.finished_at = TaskRun.Status.SUCCEEDED, timezone.now()
    run.save(update_fields=["status", "worker", "started_at", "finished_at"])
    events.publish(run_id, run.as_json() | {"progress": 1.0})


@shared_task
def beat_tick() -> int:
    """Beat's periodic task: forget old demo runs and leave a timestamp for the status page."""
    deleted, _ = TaskRun.objects.filter(created_at__lt=timezone.now() - TASK_RUN_RETENTION).delete()
    cache.set(BEAT_TICK_CACHE_KEY, timezone.now().isoformat(), timeout=None)
    return deleted
