"""One way to write each kind of figure, in every output (customer PDF, e-mail summary,
billing PDF and exports, dashboard), in English and German (sla-semantics.md section 7).

- durations read as durations, never as clock times, and are rounded UP to the whole minute, so
  a breached time never prints equal to its target: 47,881 s -> "13 h 19 min";
- a target is written in the policy's words, with the hours where that helps:
  "7 business days (56 h)", "8 business hours";
- money: "EUR 1,499.00" / "EUR -1,499.00" (en), "1.499,00 EUR" / "-1.499,00 EUR" (de);
- long ages in calendar words: "since Dec 2024".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sla.report_data.models import Target

DASH = "–"
_MONTHS_SHORT = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "de": ("Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."),
}
_TARGET_WORDS = {
    "en": {"business_hours": ("business hour", "business hours"), "business_days": ("business day", "business days")},
    "de": {"business_hours": ("Geschäftsstunde", "Geschäftsstunden"), "business_days": ("Geschäftstag", "Geschäftstage")},
}
_SINCE = {"en": "since {month} {year}", "de": "seit {month} {year}"}


def _lang(lang: str) -> str:
    if lang not in ("en", "de"):
        raise ValueError(f"unsupported language {lang!r} (en, de)")
    return lang


def minutes_up(seconds: int) -> int:
    """Whole minutes, rounded up (a second over is a minute over)."""
    return -(-int(seconds) // 60)


def duration(seconds: int | None, lang: str = "en") -> str:
    """Business time as a duration: 0 -> '0 min', 59 -> '1 min', 28,801 -> '8 h 1 min', 28,800 -> '8 h'."""
    _lang(lang)
    if seconds is None:
        return DASH
    sign = "-" if seconds < 0 else ""
    total = minutes_up(abs(int(seconds)))
    hours, minutes = divmod(total, 60)
    if hours == 0:
        return f"{sign}{minutes} min"
    hours_text = f"{hours:,}".replace(",", "." if lang == "de" else ",")
    return f"{sign}{hours_text} h" + (f" {minutes} min" if minutes else "")


def target(t: Target | None, lang: str = "en", *, none_text: str = DASH) -> str:
    """The policy's wording, plus the hours for targets written in days: '7 business days (56 h)'."""
    words = _TARGET_WORDS[_lang(lang)]
    if t is None:
        return none_text
    word = words[t.unit][0 if t.amount == 1 else 1]
    text = f"{t.amount} {word}"
    if t.unit == "business_days":
        text += f" ({duration(t.seconds, lang)})"
    return text


def money(amount: Decimal | None, lang: str = "en", currency: str = "EUR") -> str:
    """Exact money: 'EUR -17,988.00' (en) / '-17.988,00 EUR' (de); never 'EUR -0.00'."""
    _lang(lang)
    if amount is None:
        return DASH
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be a Decimal, got {type(amount).__name__}")
    value = amount.quantize(Decimal("0.01"))
    if value == 0:
        value = abs(value)
    if lang == "de":
        text = f"{value:,.2f}".replace(",", "\0").replace(".", ",").replace("\0", ".")
        return f"{text} {currency}"
    return f"{currency} {value:,.2f}"


def since(day: dt.date | dt.datetime, lang: str = "en") -> str:
    """A long age in calendar words: 'since Dec 2024'."""
    return _SINCE[_lang(lang)].format(month=_MONTHS_SHORT[lang][day.month - 1], year=day.year)
