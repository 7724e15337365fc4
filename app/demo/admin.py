from django.contrib import admin

from demo.models import TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "seconds", "worker", "created_at", "finished_at")
    list_filter = ("status",)
    readonly_fields = ("id", "created_at", "started_at", "finished_at", "requeued_at")
