import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.utils import timezone

from demo import events
from demo.models import TaskRun

logger = logging.getLogger(__name__)

BEAT_TICK_CACHE_KEY = "demo:beat:last-tick"
TASK_RUN_RETENTION = timedelta(days=7)
UNFINISHED = (TaskRun.Status.QUEUED, TaskRun.Status.RUNNING)


def stale_after() -> timedelta:
    """How long a run may stay queued, or running past its seconds, before it is enqueued again.

    Longer than the broker's visibility timeout, after which Redis itself hands out again a
    task whose worker died, and than sleep_task's retries: neither is raced by a second copy.
    """
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    return timedelta(seconds=visibility + 60)


# A database that restarts (or is unreachable for a moment) fails the task's queries with
# OperationalError (InterfaceError: a connection already closed). Celery then runs it again, 1,
# 2, 4, ... up to 15 s later, each wait a random part of that (jitter: tasks failed together do
# not come back together), 10 times at most: about a minute of outage. The longest wait stays
# below the visibility timeout the tests run with (20 s), past which Redis would hand out a
# waiting retry a second time. A task still failing after that is left to requeue_stale_runs.
@shared_task(
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=15,
    retry_jitter=True,
    max_retries=10,
)
def sleep_task(self, run_id: str) -> None:
    """Sleep for the run's seconds, then record which worker did it.

    Idempotent: a redelivered message (after a worker died mid-task), a retry or a copy sent by
    requeue_stale_runs runs it again from the start, and the run is recorded as done only once,
    by whichever copy finishes first; a run already done is left alone.
    """
    run = TaskRun.objects.filter(pk=run_id, status__in=UNFINISHED).first()
    if run is None:  # done already, or deleted
        return
    worker, started_at = self.request.hostname, timezone.now()
    # A run that takes time is shown running, with its progress; an instant one is recorded once,
    # when it is done (one write and one message instead of two of each).
    if run.seconds > 0:
        unfinished = TaskRun.objects.filter(pk=run_id, status__in=UNFINISHED)
        if not unfinished.update(
            status=TaskRun.Status.RUNNING, worker=worker, started_at=started_at
        ):
            return  # another copy finished it meanwhile
        run.status, run.worker, run.started_at = TaskRun.Status.RUNNING, worker, started_at
        events.publish(run_id, run.as_json() | {"progress": 0.0})

        # Sleep in steps of at most a second, telling listeners how far along it is.
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < run.seconds:
            time.sleep(min(1.0, run.seconds - elapsed))
            progress = min(1.0, (time.monotonic() - started) / run.seconds)
            if progress < 1.0:
                events.publish(run_id, run.as_json() | {"progress": round(progress, 2)})

    # Only a run not yet done: of two copies that both get here, one records its outcome.
    finished_at = timezone.now()
    recorded = TaskRun.objects.filter(pk=run_id, status__in=UNFINISHED).update(
        status=TaskRun.Status.SUCCEEDED,
        worker=worker,
        started_at=started_at,
        finished_at=finished_at,
    )
    if recorded:
        run.status, run.worker, run.started_at = TaskRun.Status.SUCCEEDED, worker, started_at
        run.finished_at = finished_at
        events.publish(run_id, run.as_json() | {"progress": 1.0})


@shared_task
def requeue_stale_runs() -> int:
    """Beat's safety net: enqueue again each run that stayed queued, or running, long past when it
    should have finished (its message lost, or its retries used up while the database was down).
    Each such run at most once per stale_after(), however often the sweep runs."""
    now = timezone.now()
    cutoff = now - stale_after()
    candidates = TaskRun.objects.filter(
        Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff),
        Q(status=TaskRun.Status.QUEUED, created_at__lt=cutoff)
        | Q(status=TaskRun.Status.RUNNING, started_at__lt=cutoff),
    )
    requeued = 0
    for run in candidates:
        # A run that started is overdue only once its own seconds are over too.
        if run.started_at and run.started_at + timedelta(seconds=run.seconds) >= cutoff:
            continue
        # Claimed by one sweep only: the row must still be as it was read.
        claimed = TaskRun.objects.filter(
            pk=run.pk, status=run.status, requeued_at=run.requeued_at
        ).update(requeued_at=now)
        if not claimed:
            continue
        sleep_task.apply_async((str(run.pk),), task_id=str(run.pk))
        logger.warning("task run %s was still %s: enqueued again", run.pk, run.status)
        requeued += 1
    return requeued


@shared_task
def beat_tick() -> int:
    """Beat's periodic task: forget old demo runs and leave a timestamp for the status page."""
    deleted, _ = TaskRun.objects.filter(created_at__lt=timezone.now() - TASK_RUN_RETENTION).delete()
    cache.set(BEAT_TICK_CACHE_KEY, timezone.now().isoformat(), timeout=None)
    return deleted
