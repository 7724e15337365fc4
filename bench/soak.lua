-- wrk script for the soak (bench/run.sh --soak): about BENCH_RATE requests a second over all
-- connections (each waits connections / rate between its requests, less the few milliseconds
-- a response takes at that load); one in ten enqueues a no-op task (POST /api/tasks/), the
-- others read the task with id BENCH_TASK.
local rate = tonumber(os.getenv("BENCH_RATE"))
local connections = tonumber(os.getenv("BENCH_CONNECTIONS"))
local task = os.getenv("BENCH_TASK")
local count = 0

function delay()
  return 0.95 * 1000 * connections / rate
end

function request()
  count = count + 1
  if count % 10 == 0 then
    return wrk.format("POST", "/api/tasks/", {["Content-Type"] = "application/json"}, '{"seconds": 0}')
  end
  return wrk.format("GET", "/api/tasks/" .. task .. "/")
end
