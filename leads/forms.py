"""What we accept from Twilio's webhooks. Twilio adds parameters without notice, so these
forms name only what we use and ignore the rest; anything malformed is a 400 naming the field."""

import re

import phonenumbers
from django import forms

from leads.models import Call


def e164_or_none(value: str) -> str | None:
    """The number in E.164, or None for withheld and unparseable caller IDs."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class PhoneField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=32, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        number = e164_or_none(value)
        if number is None:
            raise forms.ValidationError(f"{value!r} is not a phone number.")
        return number


class SidField(forms.RegexField):
    def __init__(self, prefix: str, **kwargs):
        super().__init__(regex=re.compile(rf"^{prefix}[0-9a-fA-F]{{32}}$"), **kwargs)


class VoiceIncomingForm(forms.Form):
    CallSid = SidField("CA")
    To = PhoneField()
    From = forms.CharField(max_length=32)  # may be a withheld caller ID; checked by the view


class DialStatusForm(VoiceIncomingForm):
    DialCallStatus = forms.ChoiceField(choices=Call.DialStatus.choices)
    DialCallSid = forms.CharField(max_length=34, required=False)
    DialCallDuration = forms.IntegerField(min_value=0, required=False)


class VoiceStatusForm(VoiceIncomingForm):
    CallStatus = forms.CharField(max_length=16)
    CallDuration = forms.IntegerField(min_value=0, required=False)
    RecordingUrl = forms.URLField(max_length=500, required=False, assume_scheme="https")
    RecordingDuration = forms.IntegerField(min_value=0, required=False)


class SmsIncomingForm(forms.Form):
    MessageSid = forms.RegexField(regex=r"^(SM|MM)[0-9a-fA-F]{32}$")
    From = PhoneField()
    To = PhoneField()
    Body = forms.CharField(max_length=1600, required=False, strip=False)
    NumMedia = forms.IntegerField(min_value=0, max_value=10, required=False)
    OptOutType = forms.CharField(max_length=16, required=False)
    MessagingServiceSid = forms.CharField(max_length=34, required=False)

    def media_urls(self, data) -> list[str]:
        count = self.cleaned_data.get("NumMedia") or 0
        urls = [data.get(f"MediaUrl{i}", "")[:500] for i in range(count)]
        return [url for url in urls if url]


class SmsStatusForm(forms.Form):
    MessageSid = forms.RegexField(regex=r"^(SM|MM)[0-9a-fA-F]{32}$")
    MessageStatus = forms.CharField(max_length=24)  # e.g. partially_delivered
    ErrorCode = forms.RegexField(regex=r"^\d{0,8}$", required=False)
