"""Give brokers the default text-back wording to edit, and start the outbox sweep."""

from django.db import migrations

from leads.textback import DEFAULT_TEMPLATES


def forwards(apps, schema_editor):
    TextbackTemplate = apps.get_model("leads", "TextbackTemplate")
    for lead_type, body in DEFAULT_TEMPLATES.items():
        TextbackTemplate.objects.get_or_create(lead_type=lead_type.value, defaults={"body": body})
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="outbox-sweep",
        defaults={"func": "leads.tasks.outbox_sweep_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def backwards(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="outbox-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(forwards, backwards)]
