"""The consent record becomes a hash-chained ledger, guarded by a trigger on PostgreSQL; the
national Do Not Call list arrives."""

import datetime as dt
import hashlib
import json

from django.db import migrations, models

GENESIS_HASH = "0" * 64

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the consent ledger is append-only: % of event % refused', TG_OP, OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
DROP TRIGGER IF EXISTS consent_ledger_append_only ON compliance_consentevent;
CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE OR DELETE ON compliance_consentevent
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS consent_ledger_append_only ON compliance_consentevent;
DROP FUNCTION IF EXISTS consent_ledger_append_only();
"""


def _hash(event) -> str:
    """ConsentEvent.compute_hash as it was when this migration was written: the model's may change
    in a later version, and this migration must keep producing the same chain."""
    payload = [
        event.seq, event.prev_hash, event.phone, event.sender, event.kind, event.source, event.source_ref,
        event.actor, event.note, event.raw_text, event.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def chain_existing_events(apps, schema_editor):
    """Give the events recorded before the ledger had a chain their place in it, oldest first."""
    ConsentEvent = apps.get_model("compliance", "ConsentEvent")
    Head = apps.get_model("compliance", "ConsentLedgerHead")
    prev_hash, seq = GENESIS_HASH, 0
    for event in ConsentEvent.objects.order_by("created_at", "id"):
        seq += 1
        event.seq, event.prev_hash = seq, prev_hash
        event.hash = _hash(event)
        ConsentEvent.objects.filter(pk=event.pk).update(seq=event.seq, prev_hash=event.prev_hash, hash=event.hash)
        prev_hash = event.hash
    Head.objects.create(pk=1, seq=seq, hash=prev_hash)


def trigger_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def trigger_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("compliance", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsentLedgerHead",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seq", models.PositiveBigIntegerField(default=0)),
                ("hash", models.CharField(default=GENESIS_HASH, max_length=64)),
            ],
        ),
        migrations.CreateModel(
            name="DoNotCallNumber",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("phone", models.CharField(max_length=16, unique=True)),
                ("imported_at", models.DateTimeField()),
                ("batch", models.CharField(blank=True, help_text="The file it came from.", max_length=120)),
            ],
            options={"verbose_name": "national Do Not Call number"},
        ),
        migrations.AddField(model_name="consentevent", name="seq", field=models.PositiveBigIntegerField(null=True)),
        migrations.AddField(model_name="consentevent", name="prev_hash", field=models.CharField(default="", max_length=64)),
        migrations.AddField(model_name="consentevent", name="hash", field=models.CharField(max_length=64, null=True)),
        migrations.AddField(
            model_name="consentevent", name="actor",
            field=models.CharField(blank=True, help_text="Who recorded it, as they were named at the time.", max_length=200),
        ),
        migrations.AddField(
            model_name="consentevent", name="note",
            field=models.TextField(blank=True, help_text="What the person recording it wrote, e.g. how the caller consented."),
        ),
        migrations.AlterField(model_name="consentevent", name="created_at", field=models.DateTimeField(db_index=True)),
        migrations.RunPython(chain_existing_events, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="consentevent", name="seq",
            field=models.PositiveBigIntegerField(
                editable=False, help_text="Position in the ledger: 1, 2, 3... with no gaps.", unique=True, verbose_name="sequence"
            ),
        ),
        migrations.AlterField(
            model_name="consentevent", name="prev_hash",
            field=models.CharField(editable=False, max_length=64, verbose_name="previous hash"),
        ),
        migrations.AlterField(
            model_name="consentevent", name="hash", field=models.CharField(editable=False, max_length=64, unique=True),
        ),
        migrations.RunPython(trigger_create, trigger_drop),
    ]
