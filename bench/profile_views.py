"""CPU a request costs inside Django, without a server or a network: where the time goes.

Run inside the app image, against the stack's Postgres and Redis (bench/run.sh does):
    docker compose exec -T -e SERVER_INTERFACE=asgi web python - PATH [REQUESTS] [--profile N]
        < bench/profile_views.py
It sends REQUESTS (default 2000) GET requests for PATH, one at a time, through the interface's
real handler (config.asgi's application on a uvloop event loop, or config.wsgi's) and prints a
JSON line: process CPU ms a request, and with --profile the N functions with the most own time
and how many thread hops (sync_to_async calls) a request made.
"""

import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
INTERFACE = os.environ.get("SERVER_INTERFACE", "wsgi")
HEADERS = {"host": "localhost", "user-agent": "profile", "accept": "application/json"}


def asgi_runner(path: str):
    import uvloop

    from config.asgi import application

    url = urlsplit(path)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url.path,
        "raw_path": url.path.encode(),
        "query_string": url.query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in HEADERS.items()],
        "client": ("172.18.0.2", 40000),
        "server": ("172.18.0.3", 8000),
    }

    async def one() -> int:
        sent, done = [], asyncio.Event()
        body = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if body:
                return body.pop()
            await done.wait()  # the client stays connected until the response has ended
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await application(dict(scope), receive, send)
        return sent[0]["status"]

    loop = uvloop.new_event_loop()
    return lambda: loop.run_until_complete(one())


def wsgi_runner(path: str):
    from config.wsgi import application

    url = urlsplit(path)
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "172.18.0.2",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    } | {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in HEADERS.items()}

    def one() -> int:
        status = []
        response = application(dict(environ), lambda s, h, e=None: status.append(s))
        b"".join(response)
        response.close()
        return int(status[0].split()[0])

    return one


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path, requests = args[0], int(args[1]) if len(args) > 1 else 2000
    top = int(sys.argv[sys.argv.index("--profile") + 1]) if "--profile" in sys.argv else 0
    one = (asgi_runner if INTERFACE == "asgi" else wsgi_runner)(path)
    for _ in range(50):  # warm-up: connections, caches, lazy imports
        status = one()
    threads_before = threading.active_count()
    started, wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        one()
    cpu = (time.process_time() - started) / requests * 1000
    out = {
        "interface": INTERFACE,
        "path": path,
        "status": status,
        "requests": requests,
        "cpu_ms": round(cpu, 3),
        "wall_ms": round((time.perf_counter() - wall) / requests * 1000, 3),
        "threads": threads_before,
    }
    if top:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            one()
        profiler.disable()
        stats = pstats.Stats(profiler)
        hops = sum(
            calls
            for (file, _, name), (_, calls, *_) in stats.stats.items()
            if name == "__call__" and file.endswith("asgiref/sync.py")
        )
        out["asgiref_calls_per_request"] = round(hops / requests, 1)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(
            os.environ.get("SORT", "tottime")
        ).print_stats(top)
        out["profile"] = text.getvalue().split("\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
