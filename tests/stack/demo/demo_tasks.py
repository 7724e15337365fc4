"""The demo's task API, as its stack tests drive it."""

import httpx
from waiting import wait_for


def enqueue(http: httpx.Client, seconds: float) -> str:
    response = http.post("/api/tasks/", json={"seconds": seconds})
    assert response.status_code == 202, f"{response.status_code}: {response.text[:300]}"
    return response.json()["id"]


def wait_for_task(http: httpx.Client, task_id: str, timeout: float = 30) -> dict:
    """The task's record once it has succeeded; a failure shows the last one seen."""
    return wait_for(
        lambda: http.get(f"/api/tasks/{task_id}/").json(),
        lambda record: record["status"] == "succeeded",
        timeout,
        f"task {task_id} succeeded",
    )
