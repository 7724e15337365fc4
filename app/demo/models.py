import uuid

from django.db import models


class TaskRun(models.Model):
    """One demo Celery task: queued by the API, carried out and recorded by a worker."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seconds = models.FloatField(help_text="How long the task sleeps.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    worker = models.CharField(max_length=255, blank=True, help_text="The worker that ran it.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    requeued_at = models.DateTimeField(
        null=True, blank=True, help_text="When beat last enqueued it again, found stale."
    )

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    def as_json(self) -> dict:
        result = None
        if self.status == self.Status.SUCCEEDED:
            result = {
                "worker": self.worker,
                "seconds": self.seconds,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
            }
        return {"id": str(self.id), "status": self.status, "result": result}
