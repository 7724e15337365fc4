"""Celery beat's scheduler with a heartbeat, so that its healthcheck proves a recent tick.

beat's loop calls tick() at least every CELERY_BEAT_MAX_LOOP_INTERVAL seconds, whether or not a
task is due. A beat that hangs stops touching the file, and compose's healthcheck, which fails
once the file is older than 30 s, marks it unhealthy.
"""

from pathlib import Path

from celery.beat import PersistentScheduler

# The container's own tmpfs, shared with no other user.
HEARTBEAT_FILE = Path("/tmp/celerybeat-heartbeat")  # noqa: S108  # nosec B108


class HeartbeatScheduler(PersistentScheduler):
    def tick(self, *args, **kwargs) -> float:
        HEARTBEAT_FILE.touch()
        return super().tick(*args, **kwargs)
