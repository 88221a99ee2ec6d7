"""Start the CRM sweep: every minute, due retries and deliveries whose task was lost go to the workers."""

from django.db import migrations


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="crm-deliveries-sweep",
        defaults={"func": "crm.tasks.crm_deliveries_sweep_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="crm-deliveries-sweep").delete()


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(schedule, unschedule)]
