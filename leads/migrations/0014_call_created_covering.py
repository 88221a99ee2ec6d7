"""The index the dashboards count a period's inbound calls from. On PostgreSQL it is built
CONCURRENTLY: the calls table is large and the missed-call path writes to it all day."""

from django.db import migrations, models

INDEX = models.Index(fields=["created_at"], include=["direction", "line", "lead", "missed"], name="call_created_covering")


def index_create(apps, schema_editor):
    model = apps.get_model("leads", "Call")
    if schema_editor.connection.vendor == "postgresql":
        sql = str(INDEX.create_sql(model, schema_editor)).replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)
        schema_editor.execute(sql)
    else:
        schema_editor.add_index(model, INDEX)


def index_drop(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("leads", "Call"), INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction
    dependencies = [("leads", "0013_missed_call_outcome")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="call", index=INDEX)],
            database_operations=[migrations.RunPython(index_create, index_drop)],
        ),
    ]
