import json
import uuid

import pytest

from demo.models import TaskRun
from demo.tasks import sleep_task

pytestmark = pytest.mark.django_db


def post_json(client, body):
    return client.post("/api/tasks/", data=body, content_type="application/json")


def test_post_records_the_run_and_enqueues_it_on_the_broker(
    client, broker, django_capture_on_commit_callbacks
):
    queued_before = broker.llen("celery")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, json.dumps({"seconds": 1.5}))

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    run = TaskRun.objects.get(pk=body["id"])
    assert run.seconds == 1.5
    assert broker.llen("celery") == queued_before + 1
    message = json.loads(broker.lindex("celery", 0))
    assert message["headers"]["id"] == body["id"]
    assert message["headers"]["task"] == "demo.tasks.sleep_task"


def test_a_full_broker_gets_503_and_leaves_no_run(client, broker):
    """A broker at its maxmemory refuses writes (noeviction, compose.yaml): the enqueue is
    answered 503 with Retry-After, not a 500, and no row claims a queued task."""
    limit = broker.config_get("maxmemory")["maxmemory"]
    broker.config_set("maxmemory", 1)  # below what it holds already: every write refused
    try:
        response = post_json(client, json.dumps({"seconds": 0}))
    finally:
        broker.config_set("maxmemory", limit)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "10"
    assert not TaskRun.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        '{"seconds": "3"}',
        '{"seconds": -1}',
        '{"seconds": 61}',
        '{"seconds": true}',
        '{"seconds": null}',
        '{"seconds": 1e999}',
        '{"seconds": 1E400}',
        '{"seconds": NaN}',
        '{"seconds": Infinity}',
        '{"seconds": -Infinity}',
        '{"seconds": 1' + "0" * 400 + "}",
        '{"seconds": ' + "9" * 5000 + "}",
        '{"seconds": 0.' + "1" * 5000 + "}",
        '{"seconds": [1]}',
    ],
)
def test_invalid_seconds_gets_400(client, body):
    response = post_json(client, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert not TaskRun.objects.exists()


@pytest.mark.parametrize("body", ['{"seconds": -0}', '{"seconds": -0.0}', '{"seconds": 6e1}'])
def test_neighbours_of_valid_numbers_are_accepted(client, body):
    assert post_json(client, body).status_code == 202


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_declared_json_gets_415(client, content_type):
    response = client.post("/api/tasks/", data='{"seconds": 1}', content_type=content_type)
    assert response.status_code == 415
    assert not TaskRun.objects.exists()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"seconds"', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_gets_400(client, body):
    response = post_json(client, body)
    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]


def test_unknown_or_malformed_task_id_gets_404(client):
    assert client.get(f"/api/tasks/{uuid.uuid4()}/").status_code == 404
    assert client.get("/api/tasks/not-a-uuid/").status_code == 404


def test_wrong_methods_get_405(client):
    assert client.get("/api/tasks/").status_code == 405
    assert client.post("/api/info/").status_code == 405


def test_head_works_wherever_get_does(client):
    run = TaskRun.objects.create(seconds=0)
    for path in ("/", "/api/info/", "/api/wait/?ms=1", f"/api/tasks/{run.id}/"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b"", path


def test_the_task_records_its_worker_and_outcome(client):
    run = TaskRun.objects.create(seconds=0)
    sleep_task.apply(args=(str(run.id),))

    body = client.get(f"/api/tasks/{run.id}/").json()
    assert body["status"] == "succeeded"
    assert body["result"]["worker"]
    assert body["result"]["seconds"] == 0


def test_the_task_leaves_a_finished_run_alone():
    run = TaskRun.objects.create(seconds=0)
    sleep_task.apply(args=(str(run.id),))
    finished = TaskRun.objects.get(pk=run.id).finished_at

    sleep_task.apply(args=(str(run.id),))  # a redelivered message
    assert TaskRun.objects.get(pk=run.id).finished_at == finished
