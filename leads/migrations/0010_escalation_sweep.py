"""Start the escalation sweep: every minute, leads whose window (or claim offer) ran out move on."""

from django.db import migrations


def forwards(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="escalation-sweep",
        defaults={"func": "leads.tasks.escalation_sweep_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def backwards(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="escalation-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("leads", "0009_routing_and_escalation"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(forwards, backwards)]
