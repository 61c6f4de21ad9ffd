"""Template filters: amounts in kroner, times in Norwegian time with the offset, ages, masked
national ids. Every time a page shows is Europe/Oslo with its UTC offset (``+01:00``)."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment

from gateway.casework.lookup import kroner, mask_national_id, masked
from gateway.casework.ruleset import severity_label
from gateway.clock import OSLO, utc_now
from gateway.logs import redact


def when(moment: datetime | str | None) -> str:
    """An aware moment as Norwegian time with its offset; a naive one (a claim's DatoTid,
    already local) as it is. Text is read as ISO 8601 (the store's UTC times)."""
    if moment is None:
        return "–"
    if isinstance(moment, str):
        try:
            return when(datetime.fromisoformat(moment))
        except ValueError:
            return moment
    if moment.tzinfo is None:
        return moment.isoformat(sep=" ", timespec="minutes")
    return moment.astimezone(OSLO).isoformat(sep=" ", timespec="minutes")


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in Norwegian: ``3 d 4 t``, ``2 t 5 min``, ``12 min``."""
    if moment is None:
        return "–"
    seconds = max(0, int(((now or utc_now()) - moment).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} t"
    if hours:
        return f"{hours} t {rest // 60} min"
    return f"{rest // 60} min"


def mask_in(text: object, patient_id: str) -> str:
    """A text from the store with the patient's national id (and any 11-digit run) masked."""
    return redact(masked(str(text), patient_id))


#: Norwegian words for the store's state and kind values (the values stay as they are).
LABELS = {
    "accepted": "godtatt",
    "partially_accepted": "delvis godtatt",
    "rejected": "avvist",
    "ebxml_error": "ebXML-feil",
    "duplicate": "duplikat",
    "signal": "signal (kvittering)",
    "failed": "feilet hos oss",
    "pending_replies": "svar som venter",
    "pending": "venter",
    "delivered": "levert",
    "dead": "dødt brev",
    "discarded": "forkastet",
    "awaiting": "venter på kvittering",
    "acknowledged": "kvittert",
    "error": "feilmelding mottatt",
    "expired": "utløpt",
    "apprec": "AppRec",
    "acknowledgment": "ebXML-kvittering",
    "message_error": "ebXML-feilmelding",
    "payout_decision": "utbetalingsvedtak",
    "recorded": "registrert",
    "enqueued": "i utboksen",
    "done": "sendt",
}


def label(value: object) -> str:
    """The Norwegian word for a stored value; the value itself if there is none."""
    if value is None:
        return "–"
    return LABELS.get(str(value), str(value))


def install(env: Environment) -> None:
    env.filters["kr"] = kroner
    env.filters["when"] = when
    env.filters["age"] = age
    env.filters["masked_id"] = mask_national_id
    env.filters["redact"] = redact
    env.filters["severity"] = severity_label
    env.filters["mask_in"] = mask_in
    env.filters["nb"] = label
