"""Beat's schedule and its periodic task (demo.tasks.beat_tick)."""

from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from config.celery import app as celery_app
from demo.models import TaskRun
from demo.tasks import BEAT_TICK_CACHE_KEY, TASK_RUN_RETENTION, beat_tick

pytestmark = pytest.mark.django_db


def test_the_schedule_runs_beat_tick_and_the_stale_run_sweep_every_30_seconds():
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule == {"demo.tasks.beat_tick": 30.0, "demo.tasks.requeue_stale_runs": 30.0}
    # The names beat sends are tasks the worker knows.
    assert set(schedule) <= set(celery_app.tasks)
    assert celery_app.conf.beat_scheduler == "core.beat.HeartbeatScheduler"


def test_beat_tick_forgets_runs_older_than_a_week_and_keeps_the_rest():
    now = timezone.now()
    ages = {
        "old": timedelta(days=30),
        "just-expired": TASK_RUN_RETENTION + timedelta(minutes=1),
        "almost-expired": TASK_RUN_RETENTION - timedelta(minutes=1),
        "new": timedelta(0),
    }
    runs = {name: TaskRun.objects.create(seconds=0) for name in ages}
    for name, age in ages.items():
        # created_at is auto_now_add: set it after the fact.
        TaskRun.objects.filter(pk=runs[name].pk).update(created_at=now - age)

    assert beat_tick() == 2

    kept = set(TaskRun.objects.values_list("pk", flat=True))
    assert kept == {runs["almost-expired"].pk, runs["new"].pk}


def test_beat_tick_leaves_its_timestamp_for_the_status_page():
    cache.delete(BEAT_TICK_CACHE_KEY)
    before = timezone.now()
    beat_tick()
    stamp = cache.get(BEAT_TICK_CACHE_KEY)
    assert stamp is not None
    assert before <= datetime.fromisoformat(stamp) <= timezone.now()
