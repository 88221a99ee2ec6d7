"""The every-minute sweep that runs the follow-up steps of unanswered text-backs."""

from django.db import migrations


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="follow-ups", defaults={"func": "leads.tasks.follow_ups_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="follow-ups").delete()


class Migration(migrations.Migration):

    dependencies = [
        ("leads", "0015_qualification_follow_up"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
