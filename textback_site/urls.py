from django.contrib import admin
from django.urls import include, path

from leads import webhooks

admin.site.site_header = "Textback control room"
admin.site.site_title = "Textback"
admin.site.index_title = "Brokerage settings and records"

twilio_urls = [
    path("voice/incoming/", webhooks.voice_incoming, name="twilio-voice-incoming"),
    path("voice/dial-status/", webhooks.voice_dial_status, name="twilio-voice-dial-status"),
    path("voice/status/", webhooks.voice_status, name="twilio-voice-status"),
    path("voice/call-back/connect/", webhooks.voice_call_back_connect, name="twilio-voice-call-back-connect"),
    path("voice/call-back/dial-status/", webhooks.voice_call_back_dial_status, name="twilio-voice-call-back-dial-status"),
    path("voice/call-back/status/", webhooks.voice_call_back_status, name="twilio-voice-call-back-status"),
    path("sms/incoming/", webhooks.sms_incoming, name="twilio-sms-incoming"),
    path("sms/status/", webhooks.sms_status, name="twilio-sms-status"),
]

urlpatterns = [
    path("twilio/", include(twilio_urls)),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("simulator/", include("leads.simulator_urls")),
    path("", include("inbox.urls")),
]
