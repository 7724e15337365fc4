"""The demo's task API, as its stack tests drive it."""

import time

import httpx


def enqueue(http: httpx.Client, seconds: float) -> str:
    response = http.post("/api/tasks/", json={"seconds": seconds})
    assert response.status_code == 202, f"{response.status_code}: {response.text[:300]}"
    return response.json()["id"]


def wait_for_task(http: httpx.Client, task_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = http.get(f"/api/tasks/{task_id}/").json()
        if body["status"] == "succeeded":
            return body
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish in {timeout} s: {body}")
