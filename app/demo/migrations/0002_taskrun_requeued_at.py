from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("demo", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskrun",
            name="requeued_at",
            field=models.DateTimeField(
                blank=True, help_text="When beat last enqueued it again, found stale.", null=True
            ),
        ),
    ]
