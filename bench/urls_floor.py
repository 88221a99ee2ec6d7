"""The product's URLs plus /bench/floor/: a trivial Django view served by the same daphne,
through the same middleware, so the storm can compare the webhooks with Django's own floor."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from textback_site.urls import urlpatterns as product_urlpatterns


@csrf_exempt
def floor(request):
    """Reads the form like a webhook does and answers; no database, no signature check."""
    request.POST.get("CallSid")
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/floor/", floor), *product_urlpatterns]
