from django.conf import settings


def product(request):
    return {"DEMO_MODE": settings.DEMO_MODE}
