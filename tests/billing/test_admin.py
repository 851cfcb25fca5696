"""The Django admin pages billing registers open for a superuser, and a GPU pool can be added there with its
serving facts (the README sends admins there to add pools)."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.models import GpuPool

pytestmark = pytest.mark.django_db

MODELS = ("price", "priceoverride", "attributionrule", "gpupool", "budget", "anomalyrule", "latencyslo", "alert",
          "recommendation")


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456!"))
    return client


@pytest.mark.parametrize("model", MODELS)
def test_every_billing_admin_list_opens(admin_client, model):
    assert admin_client.get(f"/admin/billing/{model}/").status_code == 200


def test_an_admin_adds_a_gpu_pool_with_its_serving_facts(admin_client, org):
    response = admin_client.post("/admin/billing/gpupool/add/", {
        "organization": org.pk, "name": "llama-70b", "gpu_model": "H100", "gpu_count": "4", "hourly_usd_per_gpu": "2.50",
        "served_models": '["llama-3.1-70b"]', "gpu_memory_gb": "80", "model_params_billion": "70", "weight_precision": "bf16",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    pool = GpuPool.objects.get(name="llama-70b")
    assert (pool.gpu_count, pool.hourly_usd_per_gpu, pool.model_params_billion, pool.weight_precision) == (
        4, Decimal("2.50"), Decimal("70"), "bf16")
    assert pool.served_models == ["llama-3.1-70b"]
