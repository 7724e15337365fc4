// Drives the page's live Celery check and the task form through the JSON API.
"use strict";

async function enqueue(seconds) {
  const response = await fetch("/api/tasks/", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ seconds }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body.id;
}

async function waitForTask(id, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await fetch(`/api/tasks/${id}/`);
    const body = await response.json();
    if (body.status === "succeeded") return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("no worker finished it in time");
}

function show(item, state, text) {
  item.className = state;
  item.querySelector(".result").textContent = text;
}

async function celeryRoundTrip() {
  const item = document.getElementById("celery-check");
  const started = performance.now();
  try {
    const task = await waitForTask(await enqueue(0), 10000);
    const ms = Math.round(performance.now() - started);
    show(item, "ok", `ok: ${ms} ms by ${task.result.worker}`);
  } catch (error) {
    show(item, "fail", `error: ${error.message}`);
  }
}

// Follows a task through its event stream until it succeeds.
function followTask(id, onState) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(`/api/tasks/${id}/events/`);
    const handle = (event) => {
      const state = JSON.parse(event.data);
      onState(state);
      if (state.status === "succeeded") {
        source.close();
        resolve(state);
      }
    };
    for (const status of ["queued", "running", "succeeded"]) source.addEventListener(status, handle);
    // EventSource reconnects by itself when a stream ends early; give up only if it cannot.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) reject(new Error("event stream closed"));
    };
  });
}

function taskForm() {
  const form = document.getElementById("task-form");
  const output = document.getElementById("task-output");
  const bar = document.getElementById("task-progress");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const seconds = Number(form.elements.seconds.value);
    try {
      const id = await enqueue(seconds);
      bar.hidden = false;
      bar.value = 0;
      const task = await followTask(id, (state) => {
        bar.value = state.progress ?? 0;
        output.textContent = `${state.status} ${id}`;
      });
      output.textContent = JSON.stringify(task, null, 2);
    } catch (error) {
      output.textContent = `error: ${error.message}`;
    }
  });
}

celeryRoundTrip();
taskForm();
