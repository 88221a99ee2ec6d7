"""Text-back wording per language: callers known to write Spanish get theirs in Spanish."""

from django.db import migrations, models

# The wording as it was when this migration was written (later edits to the defaults do not rewrite history).
SPANISH = {
    "buyer": "{brokerage}: no pudimos atender su llamada sobre {listing}. Un agente le escribira aqui pronto. Responda STOP para salir.",
    "seller": "{brokerage}: no pudimos atender su llamada. Un agente le escribira aqui pronto sobre la venta de su casa. Responda STOP para salir.",
    "home_value": "{brokerage}: gracias por llamar sobre el valor de su casa. Un agente le escribira aqui pronto. Responda STOP para salir.",
    "general": "{brokerage}: no pudimos atender su llamada. Un agente le escribira aqui pronto. Responda STOP para salir.",
}


def spanish_defaults(apps, schema_editor):
    """Brokers get the Spanish wording to edit beside the English."""
    TextbackTemplate = apps.get_model("leads", "TextbackTemplate")
    for lead_type, body in SPANISH.items():
        TextbackTemplate.objects.get_or_create(lead_type=lead_type, language="es", defaults={"body": body})


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0016_follow_up_schedule'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='textbacktemplate',
            options={'ordering': ['lead_type', 'language'], 'verbose_name': 'text-back template'},
        ),
        migrations.AddField(
            model_name='textbacktemplate',
            name='language',
            field=models.CharField(choices=[('en', 'English'), ('es', 'Spanish')], default='en', help_text='Sent to callers known to write in this language (they wrote in it before).', max_length=8),
        ),
        migrations.AlterField(
            model_name='textbacktemplate',
            name='lead_type',
            field=models.CharField(choices=[('buyer', 'Buyer'), ('seller', 'Seller'), ('home_value', 'Home value'), ('general', 'General')], max_length=16),
        ),
        migrations.AddConstraint(
            model_name='textbacktemplate',
            constraint=models.UniqueConstraint(fields=('lead_type', 'language'), name='template_one_per_type_and_language'),
        ),
        migrations.RunPython(spanish_defaults, migrations.RunPython.noop),
    ]
