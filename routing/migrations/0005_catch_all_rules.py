"""Every office routes through its rules from now on: give each existing office its catch-all."""

from django.db import migrations


def forwards(apps, schema_editor):
    Office = apps.get_model("routing", "Office")
    RoutingRule = apps.get_model("routing", "RoutingRule")
    for office in Office.objects.all():
        RoutingRule.objects.get_or_create(
            office=office, is_catch_all=True,
            defaults={"name": "Everyone else", "position": 2**31 - 1, "strategy": "round_robin"},
        )


class Migration(migrations.Migration):
    dependencies = [("routing", "0004_routing_rules")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
