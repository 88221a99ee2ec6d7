"""The words of the text-back: rendered from the broker's template, one SMS segment if at all possible.

A plain (GSM-7) SMS carries 160 characters; one curly quote or emoji switches the whole text to
UCS-2 and 70 characters, doubling or tripling the cost and splitting the message. So typographic
characters are folded to their plain forms first.
"""

import re

from routing.models import LeadType

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")

_PLAIN_FORMS = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " "})

DEFAULT_TEMPLATES = {
    LeadType.BUYER: "{brokerage}: sorry we missed your call about {listing}! An agent will text you here in a few minutes. Reply STOP to opt out.",
    LeadType.SELLER: "{brokerage}: sorry we missed your call! An agent will text you here shortly about selling your home. Reply STOP to opt out.",
    LeadType.HOME_VALUE: "{brokerage}: thanks for calling about your home's value! An agent will text you here shortly. Reply STOP to opt out.",
    LeadType.GENERAL: "{brokerage}: sorry we missed your call! An agent will text you here shortly. Reply STOP to opt out.",
}
# For callers known to write Spanish. Plain GSM-7 letters (no accents), so each stays one segment.
DEFAULT_TEMPLATES_ES = {
    LeadType.BUYER: "{brokerage}: no pudimos atender su llamada sobre {listing}. Un agente le escribira aqui pronto. Responda STOP para salir.",
    LeadType.SELLER: "{brokerage}: no pudimos atender su llamada. Un agente le escribira aqui pronto sobre la venta de su casa. Responda STOP para salir.",
    LeadType.HOME_VALUE: "{brokerage}: gracias por llamar sobre el valor de su casa. Un agente le escribira aqui pronto. Responda STOP para salir.",
    LeadType.GENERAL: "{brokerage}: no pudimos atender su llamada. Un agente le escribira aqui pronto. Responda STOP para salir.",
}
DEFAULTS_BY_LANGUAGE = {"en": DEFAULT_TEMPLATES, "es": DEFAULT_TEMPLATES_ES}
PLACEHOLDERS = ("brokerage", "listing", "agent", "office")
SNIPPET_PLACEHOLDERS = ("agent", "brokerage", "listing")  # the agent's canned replies
SINGLE_SEGMENT_GSM7 = 160


def plain_text(body: str) -> str:
    return body.translate(_PLAIN_FORMS)


def is_gsm7(body: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in body)


def segment_count(body: str) -> int:
    """How many SMS parts carriers bill for this body."""
    if is_gsm7(body):
        length = gsm7_length(body)
        return 1 if length <= SINGLE_SEGMENT_GSM7 else -(-length // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def gsm7_length(body: str) -> int:
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in body)


# Placeholders are bare names in braces. They are filled by substitution, not str.format, so a
# broker's stray brace or {listing.attr} can never crash the missed-call path.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def placeholders_fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def placeholder_problems(template: str, allowed_names=PLACEHOLDERS) -> list[str]:
    allowed = ", ".join(f"{{{name}}}" for name in allowed_names)
    problems = [
        f"Unknown placeholder {{{name}}}; use only {allowed}."
        for name in sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - set(allowed_names))
    ]
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        problems.append(f"A brace is not part of a placeholder; use only {allowed}.")
    return problems


def textback_render(*, template: str, brokerage: str, listing: str, agent: str, office: str) -> str:
    """Fill the template; if the listing's address pushes it past one segment, shorten the address."""
    values = {"brokerage": brokerage, "listing": listing or "a home", "agent": agent or "an agent", "office": office}
    body = plain_text(placeholders_fill(template, values)).strip()
    overflow = gsm7_length(body) - SINGLE_SEGMENT_GSM7
    if overflow > 0 and listing and is_gsm7(body):
        keep = max(len(values["listing"]) - overflow - 1, 8)
        values["listing"] = values["listing"][:keep].rstrip() + "."
        body = plain_text(placeholders_fill(template, values)).strip()
    return body


def template_problems(template: str) -> list[str]:
    """What a broker must fix before a template can be saved."""
    problems = placeholder_problems(template)
    if problems:
        return problems
    sample = textback_render(
        template=template, brokerage="Longname Realty Group", listing="1234 Longstreet Ave", agent="Alexandra Smith", office="Downtown"
    )
    if not re.search(r"\bSTOP\b", sample):
        problems.append("Say how to opt out, e.g. 'Reply STOP to opt out.'")
    if "{brokerage}" not in template:
        problems.append("Name the business: include {brokerage}.")
    if not is_gsm7(sample):
        problems.append("Use plain characters only: emoji and some accents make every text cost 2-3 times more.")
    elif segment_count(sample) > 1:
        problems.append(f"Too long for one text: {gsm7_length(sample)} of 160 characters with a typical name and address.")
    return problems
