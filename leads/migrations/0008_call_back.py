from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0007_inbox'),
    ]

    operations = [
        migrations.AddField(
            model_name='call',
            name='error_message',
            field=models.CharField(blank=True, help_text='Why a call-back could not be placed.', max_length=255),
        ),
    ]
