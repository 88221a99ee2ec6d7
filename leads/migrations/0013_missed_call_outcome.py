"""Each missed call's outcome, stored so dashboards sum rows; the marks of leads whose outcomes
are due a refresh, and the every-minute task that stores them. Every lead with history is marked
due, so the task stores the outcomes of calls missed before this (5,000 leads a minute)."""

import django.db.models.deletion
from django.db import migrations, models


def schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="missed-call-outcomes",
        defaults={"func": "leads.tasks.missed_call_outcomes_catch_up_task", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


# Plain SQL that both databases take: the marks for every lead with a missed call so far.
MARK_HISTORY_DUE = """
INSERT INTO leads_outcomerefreshdue (lead_id, since)
SELECT DISTINCT lead_id, CURRENT_TIMESTAMP FROM leads_call WHERE missed
"""


def unschedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="missed-call-outcomes").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0012_retention'),
        ('django_q', '0018_task_success_index'),
        ('routing', '0006_compliance'),
    ]

    operations = [
        migrations.CreateModel(
            name='MissedCallOutcome',
            fields=[
                ('call', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='outcome', serialize=False, to='leads.call')),
                ('missed_at', models.DateTimeField()),
                ('speed_to_lead', models.FloatField(blank=True, help_text='Seconds from queueing the text-back to Twilio accepting it; empty when none went.', null=True)),
                ('delivered', models.BooleanField(default=False)),
                ('undelivered_code', models.CharField(blank=True, help_text="Twilio's error code when the text-back failed.", max_length=16)),
                ('replied', models.BooleanField(default=False, help_text='The caller texted after the text-back.')),
                ('response', models.FloatField(blank=True, help_text='Seconds until a human replied or called; empty if none did.', null=True)),
                ('response_business', models.FloatField(blank=True, help_text="The same, counting the office's business hours only.", null=True)),
                ('recovered', models.BooleanField(default=False, help_text='A two-way conversation with a human followed.')),
                ('appointment', models.BooleanField(default=False)),
                ('opted_out', models.BooleanField(default=False)),
                ('landline', models.BooleanField(default=False)),
                ('refreshed_at', models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name='OutcomeRefreshDue',
            fields=[
                ('lead', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='leads.lead')),
                ('since', models.DateTimeField(help_text='The latest change; a refresh removes the mark only if nothing changed since it read.')),
            ],
        ),
        migrations.AddField(
            model_name='missedcalloutcome',
            name='lead',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='missed_call_outcomes', to='leads.lead'),
        ),
        migrations.AddField(
            model_name='missedcalloutcome',
            name='line',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='missed_call_outcomes', to='routing.trackingnumber'),
        ),
        migrations.AddIndex(
            model_name='missedcalloutcome',
            index=models.Index(fields=['missed_at'], name='leads_misse_missed__80dc3a_idx'),
        ),
        migrations.RunPython(schedule, unschedule),
        migrations.RunSQL(MARK_HISTORY_DUE, migrations.RunSQL.noop),
    ]
