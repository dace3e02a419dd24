import secrets

from django.db import migrations, models

import affiliates.models


def fill_codes(apps, schema_editor):
    Affiliate = apps.get_model("affiliates", "Affiliate")
    for affiliate in Affiliate.objects.filter(referral_code=""):
        affiliate.referral_code = secrets.token_urlsafe(6)[:8]
        affiliate.save(update_fields=["referral_code"])


class Migration(migrations.Migration):
    dependencies = [("affiliates", "0004_affiliate_minimum_payout")]

    operations = [
        migrations.AddField(
            model_name="affiliate",
            name="referral_code",
            field=models.CharField(default="", editable=False, max_length=16),
            preserve_default=False,
        ),
        migrations.RunPython(fill_codes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="affiliate",
            name="referral_code",
            field=models.CharField(
                default=affiliates.models.new_referral_code,
                editable=False,
                help_text="Sign-ups through /signup/?ref=<code> become this affiliate's "
                "sub-affiliates.",
                max_length=16,
                unique=True,
            ),
        ),
    ]
