import json

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings

from demo.models import TaskRun
from demo.tasks import sleep_task

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "ms",
    [
        "",
        "abc",
        "-1",
        "-0",
        "+5",
        " 5",
        "1e3",
        "15001",
        "1.5",
        "99999999999999999999",
        "9" * 5000,
        "\u0661\u0662",  # Arabic-Indic digits: isdecimal() says yes, they are not ours
        "\uff15",  # a fullwidth 5
    ],
)
def test_wait_validates_ms(client, ms):
    response = client.get("/api/wait/", {"ms": ms})
    assert response.status_code == 400
    assert response.json()["field"] == "ms"


def test_wait_waits_and_names_the_interface(client):
    assert client.get("/api/wait/?ms=5").json() == {"interface": "wsgi", "waited_ms": 5}


def test_info_under_asgi_reads_the_running_event_loop(async_client):
    info = async_to_sync(async_client.get)("/api/info/").json()
    assert info["interface"] == "asgi"
    assert info["event_loop"] == "asyncio"  # the test's loop; uvloop under gunicorn (stack tests)


def test_info_under_wsgi_has_no_event_loop(client):
    assert client.get("/api/info/").json()["event_loop"] is None


def test_events_of_a_finished_task_are_one_event_then_the_end(client):
    run = TaskRun.objects.create(seconds=0)
    sleep_task.apply(args=(str(run.id),))

    response = client.get(f"/api/tasks/{run.id}/events/")
    assert response["Content-Type"] == "text/event-stream"
    assert response["X-Accel-Buffering"] == "no"
    body = response.content.decode()
    assert body.count("event: ") == 1
    assert "event: succeeded" in body


def test_events_of_a_task_done_long_ago_say_it_is_done_all_the_way(client):
    """Its last published state has left Redis: the database's record still says 100 %."""
    run = TaskRun.objects.create(seconds=0)
    sleep_task.apply(args=(str(run.id),))
    redis.Redis.from_url(f"{settings.REDIS_URL}/0").delete(f"demo:task-state:{run.id}")

    body = client.get(f"/api/tasks/{run.id}/events/").content.decode()
    data = json.loads(body.split("data: ", 1)[1].split("\n", 1)[0])
    assert (data["status"], data["progress"]) == ("succeeded", 1.0)


def test_under_wsgi_events_answer_at_once_and_the_browser_polls(client):
    """A sync worker never holds a stream: one event, a retry hint, and the response ends."""
    run = TaskRun.objects.create(seconds=30)
    response = client.get(f"/api/tasks/{run.id}/events/")
    assert not response.streaming
    body = response.content.decode()
    assert body.startswith("retry: 1000\n")
    assert body.count("event: ") == 1
    assert "event: queued" in body


def test_head_of_events_answers_headers_only(client):
    run = TaskRun.objects.create(seconds=30)
    response = client.head(f"/api/tasks/{run.id}/events/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response.content == b""


def test_events_of_an_unknown_task_get_404(client):
    assert client.get("/api/tasks/00000000-0000-0000-0000-000000000000/events/").status_code == 404


def published_states(seconds: float) -> list[dict]:
    """The states a task of `seconds` announces on its channel, in order."""
    run = TaskRun.objects.create(seconds=seconds)
    client = redis.Redis.from_url(f"{settings.REDIS_URL}/0")
    with client, client.pubsub() as pubsub:
        pubsub.subscribe(f"demo:task-events:{run.id}")
        pubsub.get_message(timeout=1)  # the subscription's confirmation
        sleep_task.apply(args=(str(run.id),))
        messages = iter(lambda: pubsub.get_message(timeout=0.5), None)
        return [json.loads(message["data"]) for message in messages]


def test_a_task_that_takes_time_is_announced_running_then_done():
    states = published_states(seconds=0.1)
    assert [state["status"] for state in states] == ["running", "succeeded"]
    assert states[0]["progress"] == 0.0
    assert states[-1]["result"]["worker"]


def test_an_instant_task_is_announced_once_done_with_its_worker_and_start():
    [state] = published_states(seconds=0)
    assert (state["status"], state["progress"]) == ("succeeded", 1.0)
    run = TaskRun.objects.get(pk=state["id"])
    assert run.worker
    assert run.started_at <= run.finished_at


def test_the_task_leaves_its_final_state_for_late_listeners():
    run = TaskRun.objects.create(seconds=0.1)
    sleep_task.apply(args=(str(run.id),))
    client = redis.Redis.from_url(f"{settings.REDIS_URL}/0")
    with client:
        state = json.loads(client.get(f"demo:task-state:{run.id}"))
        kept_for = client.ttl(f"demo:task-state:{run.id}")
    assert state["status"] == "succeeded"
    assert state["progress"] == 1.0
    # ... for a minute, not for an hour: the database keeps the outcome.
    assert 0 < kept_for <= 60
