-- wrk script (bench/run.sh): POST /api/tasks/ with a no-op task, as the demo's page does.
wrk.method = "POST"
wrk.body = '{"seconds": 0}'
wrk.headers["Content-Type"] = "application/json"
