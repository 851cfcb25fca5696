"""The canonical model every page groups a call by, and the provider's response id; existing rows get their model."""

from django.db import migrations, models


def fill_models(apps, schema_editor):
    from ingest.model_names import canonical_model

    LLMCall = apps.get_model("ingest", "LLMCall")
    pairs = LLMCall.objects.values_list("response_model", "request_model").distinct()
    for response_model, request_model in pairs.iterator():
        model = canonical_model(response_model, request_model)
        if model:
            LLMCall.objects.filter(response_model=response_model, request_model=request_model).update(model=model)


class Migration(migrations.Migration):

    dependencies = [
        ("ingest", "0006_implausible_calls"),
    ]

    operations = [
        migrations.AddField(
            model_name="llmcall",
            name="model",
            field=models.TextField(blank=True, db_default="", default="",
                                   help_text="The canonical model every page groups by (ingest.model_names.canonical_model); "
                                             "the two above are details."),
        ),
        migrations.AddField(
            model_name="llmcall",
            name="response_id",
            field=models.TextField(blank=True, db_default="", default="", help_text="The provider's id of its answer."),
        ),
        migrations.AddIndex(
            model_name="llmcall",
            index=models.Index(condition=~models.Q(response_id=""), fields=["organization", "response_id"],
                               name="llmcall_response_id"),
        ),
        migrations.RunPython(fill_models, migrations.RunPython.noop, elidable=True),
    ]
