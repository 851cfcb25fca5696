"""The product's URLs plus one view that fails, to see the 500 page a user would get."""

from django.urls import path

from observatory.urls import handler500
from observatory.urls import urlpatterns as product_urls


def fails(request):
    raise ValueError("a bug with a secret detail: sk-live-0000")


urlpatterns = [path("boom/", fails), *product_urls]
__all__ = ["handler500", "urlpatterns"]
