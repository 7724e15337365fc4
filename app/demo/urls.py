from django.urls import path

from demo import views

urlpatterns = [
    path("", views.status_page, name="status"),
    path("api/info/", views.info, name="info"),
    path("api/wait/", views.wait, name="wait"),
    path("api/tasks/", views.create_task, name="task-create"),
    path("api/tasks/<str:task_id>/", views.task_detail, name="task-detail"),
    path("api/tasks/<str:task_id>/events/", views.task_events, name="task-events"),
]
