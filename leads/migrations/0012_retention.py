"""Four years of record: PostgreSQL refuses to delete a text or a call younger than that (the
TCPA's limitation period), whatever the code asks; a daily prune removes only applied webhook
payloads."""

from django.db import migrations

KEEP_SQL = """
CREATE OR REPLACE FUNCTION textback_keep_four_years() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'records are kept four years: % row % from % cannot be deleted yet', TG_TABLE_NAME, OLD.id, OLD.created_at
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
DROP TRIGGER IF EXISTS keep_four_years ON leads_message;
CREATE TRIGGER keep_four_years BEFORE DELETE ON leads_message
    FOR EACH ROW WHEN (OLD.created_at > now() - interval '4 years') EXECUTE FUNCTION textback_keep_four_years();
DROP TRIGGER IF EXISTS keep_four_years ON leads_call;
CREATE TRIGGER keep_four_years BEFORE DELETE ON leads_call
    FOR EACH ROW WHEN (OLD.created_at > now() - interval '4 years') EXECUTE FUNCTION textback_keep_four_years();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS keep_four_years ON leads_message;
DROP TRIGGER IF EXISTS keep_four_years ON leads_call;
DROP FUNCTION IF EXISTS textback_keep_four_years();
"""


def triggers_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(KEEP_SQL, params=None)


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="records-prune",
        defaults={"func": "leads.tasks.records_prune_task", "schedule_type": "D", "repeats": -1},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="records-prune").delete()


class Migration(migrations.Migration):
    dependencies = [("leads", "0011_compliance"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(triggers_create, triggers_drop), migrations.RunPython(schedule, unschedule)]
