"""A run can never stay queued or running for ever: sleep_task retries while the database is
unreachable, and beat's requeue_stale_runs enqueues again what was left behind."""

import json
from datetime import timedelta

import pytest
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from demo.models import TaskRun
from demo.tasks import requeue_stale_runs, sleep_task, stale_after

pytestmark = pytest.mark.django_db


def test_sleep_task_retries_on_database_connection_errors_a_bounded_number_of_times():
    assert set(sleep_task.autoretry_for) == {OperationalError, InterfaceError}
    assert sleep_task.retry_backoff
    assert sleep_task.retry_jitter
    assert 0 < sleep_task.max_retries <= 20
    # A waiting retry stays with the worker; past the visibility timeout (20 s in the stack
    # tests) Redis would hand it out a second time.
    assert sleep_task.retry_backoff_max < 20


def run_in_state(status: str, age: timedelta, seconds: float = 0, **fields) -> TaskRun:
    run = TaskRun.objects.create(seconds=seconds)
    moment = timezone.now() - age
    started = moment if status != TaskRun.Status.QUEUED else None
    # created_at is auto_now_add: set it after the fact.
    TaskRun.objects.filter(pk=run.pk).update(
        status=status, created_at=moment, started_at=started, **fields
    )
    return TaskRun.objects.get(pk=run.pk)


def queued_ids(broker) -> list[str]:
    return [json.loads(message)["headers"]["id"] for message in broker.lrange("celery", 0, -1)]


def test_stale_runs_are_enqueued_again_once_and_fresh_or_long_ones_are_left(broker):
    stale = stale_after() + timedelta(seconds=5)
    lost_queued = run_in_state(TaskRun.Status.QUEUED, stale)
    lost_running = run_in_state(TaskRun.Status.RUNNING, stale + timedelta(seconds=30), seconds=20)
    waiting = run_in_state(TaskRun.Status.QUEUED, timedelta(seconds=5))
    # Started before the cutoff, but its 600 s are not over yet.
    long_running = run_in_state(TaskRun.Status.RUNNING, stale, seconds=600)
    done = run_in_state(TaskRun.Status.SUCCEEDED, stale * 2)

    assert requeue_stale_runs() == 2
    assert sorted(queued_ids(broker)) == sorted([str(lost_queued.pk), str(lost_running.pk)])
    for run in (waiting, long_running, done):
        assert TaskRun.objects.get(pk=run.pk).requeued_at is None

    # Beat runs the sweep every 30 s: a run is sent again once per stale_after(), not each time.
    assert requeue_stale_runs() == 0
    assert len(queued_ids(broker)) == 2


def test_a_run_requeued_long_ago_and_still_stale_is_sent_again(broker):
    stale = stale_after() + timedelta(seconds=5)
    run = run_in_state(TaskRun.Status.QUEUED, stale * 3, requeued_at=timezone.now() - stale)
    assert requeue_stale_runs() == 1
    assert queued_ids(broker) == [str(run.pk)]


def test_the_copy_sent_again_finishes_the_run():
    run = run_in_state(TaskRun.Status.RUNNING, stale_after() * 2, worker="celery@gone")
    sleep_task.apply(args=(str(run.pk),))
    run.refresh_from_db()
    assert run.status == TaskRun.Status.SUCCEEDED
    assert run.worker != "celery@gone"
    assert run.finished_at >= run.started_at > timezone.now() - timedelta(minutes=1)


def test_a_copy_of_a_finished_run_records_nothing():
    run = TaskRun.objects.create(seconds=0.1)
    sleep_task.apply(args=(str(run.id),))
    before = TaskRun.objects.get(pk=run.id)
    assert before.status == TaskRun.Status.SUCCEEDED

    sleep_task.apply(args=(str(run.id),))  # a retry, a redelivery or a requeued copy
    after = TaskRun.objects.get(pk=run.id)
    assert (after.worker, after.started_at, after.finished_at) == (
        before.worker,
        before.started_at,
        before.finished_at,
    )
