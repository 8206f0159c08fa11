"""Formatting for reports, per language ('en' or 'de'), in plain Python.

Every function takes the language explicitly; ``make_filters`` wraps them as
Jinja filters that read ``lang`` and ``tz`` from the template context, so the
templates never format anything themselves. No Babel: the few tables needed are
written out here.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from jinja2 import pass_context

from reports import format as fmt
from sla.report_data.models import DEFAULT_TIMEZONE, MIN_RATED, Target

LANGUAGES = ("en", "de")
DASH = "–"

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli",
           "August", "September", "Oktober", "November", "Dezember"),
}
MONTHS_SHORT = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "de": ("Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"),
}
WEEKDAYS = {
    "en": {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
           "fri": "Friday", "sat": "Saturday", "sun": "Sunday"},
    "de": {"mon": "Montag", "tue": "Dienstag", "wed": "Mittwoch", "thu": "Donnerstag",
           "fri": "Freitag", "sat": "Samstag", "sun": "Sonntag"},
}
_WEEKDAY_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Customer wording of the ticket statuses (never the raw codes).
STATUSES = {
    "en": {"new": "New", "open": "In progress", "pending": "Waiting for you", "on_hold": "On hold",
           "solved": "Solved – awaiting your confirmation", "closed": "Closed"},
    "de": {"new": "Neu", "open": "In Bearbeitung", "pending": "Wartet auf Sie",
           "on_hold": "Angehalten", "solved": "Gelöst – wartet auf Ihre Bestätigung",
           "closed": "Geschlossen"},
}
CLOCK_STATES = {
    "en": {"running": "running", "paused": "paused, waiting for you",
           "stopped": "stopped, solved"},
    "de": {"running": "läuft", "paused": "pausiert, wartet auf Sie",
           "stopped": "angehalten, gelöst"},
}
TIERS = {
    "en": {"professional": "Professional", "enterprise": "Enterprise", "gold": "Gold"},
    "de": {"professional": "Professional", "enterprise": "Enterprise", "gold": "Gold"},
}
COUNTRIES = {
    "en": {"DE": "Germany", "AT": "Austria", "CH": "Switzerland"},
    "de": {"DE": "Deutschland", "AT": "Österreich", "CH": "der Schweiz"},
}

# Static text of the templates. Keys are stable; a missing key is a KeyError.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "report_title": "Monthly SLA compliance report",
        "customer": "Customer",
        "customer_id": "Customer ID",
        "tier": "Support tier",
        "tier_changes": "Tier changes this month",
        "no_contract": "no contract",
        "month": "Reporting month",
        "account_manager": "Account manager",
        "cutoff": "Data as of",
        "timezone_note": "All times are local times ({tz}).",
        "summary": "Summary",
        "incidents_opened": "Incidents opened",
        "quota_used": "Included incidents",
        "quota_of": "{used} of {quota} included incidents",
        "over_quota_n": "{n} over quota",
        "over_quota": "over quota",
        "none_over_quota": "none over quota",
        "first_response": "First response",
        "resolution": "Resolution",
        "compliance": "compliance",
        "met": "met",
        "breached": "breached",
        "pending": "pending",
        "no_target": "no target",
        "not_rated": "not rated",
        "open_at_cutoff": "Open at cut-off",
        "open_at_cutoff_note": "of this month's incidents",
        "rate_note": "Compliance rate = met / (met + breached). Pending incidents and incidents "
                     "without a target are counted but not rated.",
        "per_severity": "By severity",
        "severity": "Severity",
        "sev_short": "Sev.",
        "incidents": "Incidents",
        "target": "Target",
        "median": "Median",
        "p90": "90th pct.",
        "met_breached": "Met / breached / pending",
        "durations_note": "Times are business time, rounded up to the whole minute.",
        "month_to_date": "month to date",
        "tier_since": "since {date} (was {tier})",
        "tier_ended": "contract ended {date}",
        "allowance": "{tier}: {used} of {quota} included",
        "counts": "{met} of {rated} met",
        "vs_month": "{delta} vs {month}",
        "prev_counts": "{month}: {counts}",
        "no_rated": "none rated yet",
        "no_res_targets": "Your {tier} plan has no resolution targets; resolution times are "
                          "shown in the incident list for information.",
        "breaches_title": "Breaches this month",
        "breaches_none": "No target was breached by this month's incidents.",
        "over_by": "over by {time}",
        "more_breaches": "and {n} more, see \"How the clock ran\".",
        "metric": "Target",
        "carried_line": "Still open from earlier months: {n} ({m} breached)",
        "carried_resolved_line": "Resolved this month from earlier months: {n}",
        "carried_title": "From earlier months",
        "carried_intro": "Incidents opened before {month}. They count in the month they were "
                         "opened, not in this month's rates.",
        "carried_resolved": "Resolved in {month}, final figures",
        "carried_open": "Still open at the cut-off, figures so far",
        "open_of_month": "opened this month",
        "of_target": "{time} of {target}",
        "opened": "Opened",
        "excluded": "excluded",
        "exclusion_note": "Taken out of the SLA by agreement: {reason}",
        "your_terms": "Your contract's terms apply: {terms}.",
        "restatements_title": "Changes to earlier reports",
        "restatements_intro": "Figures of reports we sent you earlier that have changed since (late updates to "
                              "tickets, approved exclusions or contract corrections).",
        "restatement_month": "Report",
        "restatement_figure": "Figure",
        "restatement_was": "Was",
        "restatement_now": "Now",
        "restatement_why": "Why",
        "figure_incidents": "incidents",
        "figure_first_response_met": "first response met",
        "figure_first_response_breached": "first response breached",
        "figure_first_response_pending": "first response pending",
        "figure_first_response_excluded": "first response excluded",
        "figure_resolution_met": "resolution met",
        "figure_resolution_breached": "resolution breached",
        "figure_resolution_pending": "resolution pending",
        "figure_resolution_excluded": "resolution excluded",
        "figure_over_quota": "incidents over quota",
        "ambiguous_order": "Several events of this incident share one instant in the ticket "
                           "history; their order was ambiguous and was settled by a fixed rule.",
        "small_sample_note": "With fewer than 5 rated incidents, counts are shown instead of a "
                             "rate; a 90th percentile needs at least 5 values.",
        "no_solid_rates": "No month had 5 rated incidents:\nsee the counts in the table below.",
        "trend": "Trend, last 12 months",
        "trend_volume": "Incidents opened per month",
        "trend_compliance": "Compliance per month",
        "incident_list": "Incidents opened in {month}",
        "no_incidents": "No incidents were opened this month.",
        "ticket": "Ticket",
        "subject": "Subject",
        "created": "Created",
        "resolved": "Resolved",
        "paused": "Paused",
        "status": "Status",
        "status_at_cutoff": "Status at cut-off",
        "best_effort": "no target",
        "explanations": "How the clock ran",
        "explanations_intro": "For every incident whose target was breached or is still "
                              "pending, the segments below show when the resolution clock ran, "
                              "when it was paused while we waited for your reply, and when it "
                              "stopped because the incident was solved. Only business hours "
                              "count.",
        "no_explanations": "All rated incidents met their targets.",
        "from": "From",
        "to": "To",
        "clock": "Clock",
        "business_time": "Business time",
        "due": "due",
        "first_response_due": "First response due",
        "resolution_due": "Resolution due",
        "running_total": "Counted towards resolution",
        "paused_total": "Paused",
        "still_open": "still open at the cut-off",
        "methodology": "How the figures are measured",
        "m_business_hours": "Business hours",
        "m_holidays": "Holidays",
        "m_response": "First response",
        "m_pauses": "Pauses and resolution",
        "m_severity": "Severity changes",
        "m_rates": "Compliance and quota",
        "severity_definitions": "Severity definitions",
        "tier_targets": "Targets of your {tier} tier",
        "page": "Page",
        "of": "of",
        "generated_by": "Generated from the ticket history as of {cutoff}.",
        "yes": "yes",
        "no": "no",
        "changed_to": "changed to",
    },
    "de": {
        "report_title": "Monatlicher SLA-Bericht",
        "customer": "Kunde",
        "customer_id": "Kundennummer",
        "tier": "Support-Stufe",
        "tier_changes": "Stufenwechsel in diesem Monat",
        "no_contract": "kein Vertrag",
        "month": "Berichtsmonat",
        "account_manager": "Ihr Ansprechpartner",
        "cutoff": "Datenstand",
        "timezone_note": "Alle Zeiten in Ortszeit ({tz}).",
        "summary": "Zusammenfassung",
        "incidents_opened": "Eröffnete Vorfälle",
        "quota_used": "Inklusive Vorfälle",
        "quota_of": "{used} von {quota} inklusive Vorfällen",
        "over_quota_n": "{n} über Kontingent",
        "over_quota": "über Kontingent",
        "none_over_quota": "keiner über Kontingent",
        "first_response": "Erste Antwort",
        "resolution": "Lösung",
        "compliance": "Einhaltung",
        "met": "eingehalten",
        "breached": "verletzt",
        "pending": "läuft",
        "no_target": "ohne Ziel",
        "not_rated": "nicht bewertet",
        "open_at_cutoff": "Offen zum Stichtag",
        "open_at_cutoff_note": "der Vorfälle dieses Monats",
        "rate_note": "Einhaltungsquote = eingehalten / (eingehalten + verletzt). Offene Vorfälle "
                     "und Vorfälle ohne Ziel werden gezählt, aber nicht bewertet.",
        "per_severity": "Nach Schweregrad",
        "severity": "Schweregrad",
        "sev_short": "Sev.",
        "incidents": "Vorfälle",
        "target": "Ziel",
        "median": "Median",
        "p90": "90. Perz.",
        "met_breached": "Eingeh. / verl. / läuft",
        "durations_note": "Zeiten sind Geschäftszeit, auf volle Minuten aufgerundet.",
        "month_to_date": "laufender Monat",
        "tier_since": "seit {date} (vorher {tier})",
        "tier_ended": "Vertrag endete am {date}",
        "allowance": "{tier}: {used} von {quota} inklusive",
        "counts": "{met} von {rated} eingehalten",
        "vs_month": "{delta} ggü. {month}",
        "prev_counts": "{month}: {counts}",
        "no_rated": "noch keiner bewertet",
        "no_res_targets": "Ihr {tier}-Plan hat keine Lösungsziele; die Lösungszeiten stehen zur "
                          "Information in der Vorfallliste.",
        "breaches_title": "Verletzte Ziele in diesem Monat",
        "breaches_none": "Kein Vorfall dieses Monats hat ein Ziel verletzt.",
        "over_by": "{time} darüber",
        "more_breaches": "und {n} weitere, siehe „Wie die Uhr lief“.",
        "metric": "Ziel",
        "carried_line": "Aus früheren Monaten noch offen: {n} ({m} verletzt)",
        "carried_resolved_line": "Aus früheren Monaten in diesem Monat gelöst: {n}",
        "carried_title": "Aus früheren Monaten",
        "carried_intro": "Vor {month} eröffnete Vorfälle. Sie zählen im Monat ihrer Eröffnung, "
                         "nicht in den Quoten dieses Monats.",
        "carried_resolved": "Im {month} gelöst, endgültige Werte",
        "carried_open": "Zum Stichtag noch offen, bisherige Werte",
        "open_of_month": "aus diesem Monat",
        "of_target": "{time} von {target}",
        "opened": "Eröffnet",
        "excluded": "ausgenommen",
        "exclusion_note": "Nach Vereinbarung vom SLA ausgenommen: {reason}",
        "your_terms": "Es gelten die Bedingungen Ihres Vertrags: {terms}.",
        "restatements_title": "Änderungen an früheren Berichten",
        "restatements_intro": "Zahlen früher versandter Berichte, die sich seitdem geändert haben (späte "
                              "Ticketänderungen, vereinbarte Ausnahmen oder Vertragskorrekturen).",
        "restatement_month": "Bericht",
        "restatement_figure": "Kennzahl",
        "restatement_was": "Vorher",
        "restatement_now": "Jetzt",
        "restatement_why": "Grund",
        "figure_incidents": "Vorfälle",
        "figure_first_response_met": "Erstreaktion eingehalten",
        "figure_first_response_breached": "Erstreaktion verletzt",
        "figure_first_response_pending": "Erstreaktion offen",
        "figure_first_response_excluded": "Erstreaktion ausgenommen",
        "figure_resolution_met": "Lösung eingehalten",
        "figure_resolution_breached": "Lösung verletzt",
        "figure_resolution_pending": "Lösung offen",
        "figure_resolution_excluded": "Lösung ausgenommen",
        "figure_over_quota": "Vorfälle über Kontingent",
        "ambiguous_order": "Mehrere Ereignisse dieses Vorfalls haben im Ticketverlauf denselben "
                           "Zeitpunkt; ihre Reihenfolge war mehrdeutig und wurde nach einer "
                           "festen Regel bestimmt.",
        "small_sample_note": "Bei weniger als 5 bewerteten Vorfällen stehen Anzahlen statt einer "
                             "Quote; ein 90. Perzentil braucht mindestens 5 Werte.",
        "no_solid_rates": "Kein Monat hatte 5 bewertete Vorfälle:\nAnzahlen in der Tabelle unten.",
        "trend": "Verlauf der letzten 12 Monate",
        "trend_volume": "Eröffnete Vorfälle pro Monat",
        "trend_compliance": "Einhaltung pro Monat",
        "incident_list": "Im {month} eröffnete Vorfälle",
        "no_incidents": "In diesem Monat wurden keine Vorfälle eröffnet.",
        "ticket": "Ticket",
        "subject": "Betreff",
        "created": "Erstellt",
        "resolved": "Gelöst",
        "paused": "Pausiert",
        "status": "Status",
        "status_at_cutoff": "Status zum Stichtag",
        "best_effort": "ohne Ziel",
        "explanations": "Wie die Uhr lief",
        "explanations_intro": "Für jeden Vorfall, dessen Ziel verletzt wurde oder noch offen ist, "
                              "zeigen die Abschnitte unten, wann die Lösungsuhr lief, wann sie "
                              "pausierte, während wir auf Ihre Antwort warteten, und wann sie "
                              "anhielt, weil der Vorfall gelöst war. Es zählt nur die "
                              "Geschäftszeit.",
        "no_explanations": "Alle bewerteten Vorfälle haben ihre Ziele eingehalten.",
        "from": "Von",
        "to": "Bis",
        "clock": "Uhr",
        "business_time": "Geschäftszeit",
        "due": "fällig",
        "first_response_due": "Erste Antwort fällig",
        "resolution_due": "Lösung fällig",
        "running_total": "Auf die Lösungszeit angerechnet",
        "paused_total": "Pausiert",
        "still_open": "zum Stichtag noch offen",
        "methodology": "So werden die Kennzahlen gemessen",
        "m_business_hours": "Geschäftszeiten",
        "m_holidays": "Feiertage",
        "m_response": "Erste Antwort",
        "m_pauses": "Pausen und Lösung",
        "m_severity": "Änderungen des Schweregrads",
        "m_rates": "Einhaltung und Kontingent",
        "severity_definitions": "Definition der Schweregrade",
        "tier_targets": "Ziele Ihrer Stufe {tier}",
        "page": "Seite",
        "of": "von",
        "generated_by": "Erstellt aus dem Ticketverlauf mit Datenstand {cutoff}.",
        "yes": "ja",
        "no": "nein",
        "changed_to": "geändert auf",
    },
}

# Paragraphs of the methodology page. Placeholders are filled by `methodology`.
METHODOLOGY = {
    "en": {
        "m_business_hours": "All durations are business time: the overlap with our business "
                            "hours, {hours}, local time in {tz}, exact to the second and "
                            "correct across daylight-saving changes. A business day is "
                            "{day_hours} business hours, so \"7 business days\" means "
                            "{seven_days} business hours. An incident opened outside business "
                            "hours starts counting at the next opening.",
        "m_holidays": "We are closed on {holidays}{extra}; these days do not count.",
        "m_response": "The first response is the first public reply by a support agent after "
                      "the incident was opened. Automatic replies do not count. If an incident "
                      "is solved before any reply, the solution counts as the first response. "
                      "The first-response clock is never paused.",
        "m_pauses": "The resolution clock runs from creation until the incident is solved. "
                    "It pauses while the incident waits for your reply ({pause}) and stops "
                    "while it is solved; if you reopen it, the clock continues and the later "
                    "solution counts. Paused time is shown separately.",
        "m_severity": "The target that applies is the one of the severity in effect when the "
                      "clock stops (or now, for a clock still running), always measured from "
                      "creation. An escalation can therefore breach a target at once.",
        "m_rates": "A target is met when the business time is at most the target. A clock "
                   "still running is breached as soon as it exceeds the target at the data "
                   "cut-off, otherwise pending. The compliance rate is met / (met + breached); "
                   "pending incidents and those without a target are shown but not rated. "
                   "Incidents are counted in the month they were opened, in order of creation; "
                   "those beyond your tier's monthly quota are marked as over quota.",
    },
    "de": {
        "m_business_hours": "Alle Dauern sind Geschäftszeit: die Überschneidung mit unseren "
                            "Geschäftszeiten, {hours}, Ortszeit {tz}, sekundengenau und korrekt "
                            "über Sommer- und Winterzeit. Ein Geschäftstag sind {day_hours} "
                            "Geschäftsstunden, „7 Geschäftstage“ also {seven_days} "
                            "Geschäftsstunden. Ein außerhalb der Geschäftszeit eröffneter Vorfall "
                            "zählt ab der nächsten Öffnung.",
        "m_holidays": "An den {holidays}{extra} ist geschlossen; diese Tage zählen nicht.",
        "m_response": "Die erste Antwort ist die erste öffentliche Antwort eines Support-"
                      "Mitarbeiters nach Eröffnung des Vorfalls. Automatische Antworten zählen "
                      "nicht. Wird ein Vorfall vor jeder Antwort gelöst, gilt die Lösung als "
                      "erste Antwort. Die Uhr der ersten Antwort pausiert nie.",
        "m_pauses": "Die Lösungsuhr läuft von der Eröffnung bis zur Lösung. Sie pausiert, "
                    "solange der Vorfall auf Ihre Antwort wartet ({pause}), und steht, solange er "
                    "gelöst ist; öffnen Sie ihn erneut, läuft sie weiter und die spätere Lösung "
                    "zählt. Die pausierte Zeit wird gesondert ausgewiesen.",
        "m_severity": "Es gilt das Ziel des Schweregrads, der beim Anhalten der Uhr gilt (bei "
                      "laufender Uhr der aktuelle), immer ab Eröffnung gemessen. Eine Eskalation "
                      "kann ein Ziel daher sofort verletzen.",
        "m_rates": "Ein Ziel ist eingehalten, wenn die Geschäftszeit höchstens dem Ziel "
                   "entspricht. Eine noch laufende Uhr gilt als verletzt, sobald sie zum "
                   "Datenstand das Ziel überschreitet, sonst als offen. Die Einhaltungsquote ist "
                   "eingehalten / (eingehalten + verletzt); offene Vorfälle und solche ohne Ziel "
                   "werden gezeigt, aber nicht bewertet. Vorfälle zählen im Monat ihrer "
                   "Eröffnung in der Reihenfolge der Erstellung; Vorfälle jenseits des "
                   "monatlichen Kontingents Ihrer Stufe sind als „über Kontingent“ markiert.",
    },
}

# German versions of the seed's severity definitions (used when the policy gives none).
SEED_SEVERITY_DEFINITIONS_DE = {
    1: "Kritisch - Produktion steht oder ist unbenutzbar, keine Umgehung.",
    2: "Hoch - wichtige Funktion beeinträchtigt, Umgehung schwer oder nicht verfügbar.",
    3: "Mittel - Funktion beeinträchtigt, Umgehung verfügbar.",
    4: "Niedrig - Frage, kosmetischer Fehler oder Funktionswunsch.",
}


def _check_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; expected one of {LANGUAGES}")
    return lang


def text(key: str, lang: str, **kwargs: object) -> str:
    s = TEXT[_check_lang(lang)][key]
    return s.format(**kwargs) if kwargs else s


def number(n: int | None, lang: str) -> str:
    """Integer with thousands separators: 1,234 (en) / 1.234 (de)."""
    if n is None:
        return DASH
    s = f"{int(n):,}"
    return s.replace(",", ".") if _check_lang(lang) == "de" else s


def rate(value: Decimal | None, lang: str, *, places: int = 1) -> str:
    """Fraction as percentage, half-up: Decimal('0.9523') -> '95.2 %' / '95,2 %'."""
    if value is None:
        return DASH
    pct = (Decimal(value) * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    s = f"{pct:.{places}f}"
    if _check_lang(lang) == "de":
        s = s.replace(".", ",")
    return f"{s}\u00a0%"


def to_local(dt: datetime, tz: str = DEFAULT_TIMEZONE) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: report times must be timezone-aware")
    return dt.astimezone(ZoneInfo(tz))


def datetime_local(dt: datetime | None, lang: str, tz: str = DEFAULT_TIMEZONE) -> str:
    """'2026-03-06 16:00' (en) / '06.03.2026 16:00' (de), in local time."""
    if dt is None:
        return DASH
    loc = to_local(dt, tz)
    if _check_lang(lang) == "de":
        return loc.strftime("%d.%m.%Y %H:%M")
    return loc.strftime("%Y-%m-%d %H:%M")


def date_local(d: datetime | date | None, lang: str, tz: str = DEFAULT_TIMEZONE) -> str:
    if d is None:
        return DASH
    if isinstance(d, datetime):
        d = to_local(d, tz).date()
    return d.strftime("%d.%m.%Y") if _check_lang(lang) == "de" else d.isoformat()


def _parse_month(month: str) -> tuple[int, int]:
    try:
        y, m = month.split("-")
        year, mon = int(y), int(m)
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    if not 1 <= mon <= 12:
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return year, mon


def month_name(month: str, lang: str) -> str:
    """'2026-03' -> 'March 2026' / 'März 2026'."""
    year, mon = _parse_month(month)
    return f"{MONTHS[_check_lang(lang)][mon - 1]} {year}"


def month_short(month: str, lang: str) -> str:
    """'2026-03' -> 'Mar 26' / 'Mär 26' (chart axis labels)."""
    year, mon = _parse_month(month)
    return f"{MONTHS_SHORT[_check_lang(lang)][mon - 1]} {year % 100:02d}"


def target(t: Target | None, lang: str) -> str:
    """The policy's wording, plus hours for day targets: '7 business days (56 h)' (reports.format)."""
    return fmt.target(t, _check_lang(lang), none_text=text("best_effort", lang))


def duration(seconds: int | None, lang: str) -> str:
    """A business duration, rounded up to the minute: '13 h 19 min' (reports.format)."""
    return fmt.duration(seconds, _check_lang(lang))


def counts(m, lang: str) -> str:
    """'1 of 1 met' (a MetricSummary or TrendPoint-like met/rated pair)."""
    return text("counts", lang, met=number(m.met, lang), rated=number(m.rated, lang))


def compliance(m, lang: str) -> str:
    """A metric's compliance: the rate from 5 rated incidents, counts below (section 7)."""
    if m is None or m.rated == 0:
        return DASH
    return rate(m.rate, lang) if m.rated >= MIN_RATED else counts(m, lang)


def delta(m, prev, lang: str) -> tuple[str, str] | None:
    """(text, css class) of the change against the month before, in percentage points.

    Only when both months have at least 5 rated incidents; a higher rate is better.
    """
    if m is None or prev is None or m.rated < MIN_RATED or prev.rated < MIN_RATED:
        return None
    diff = ((Decimal(m.rate) - Decimal(prev.rate)) * 100).quantize(Decimal("0.1"),
                                                                       rounding=ROUND_HALF_UP)
    arrow, cls = ("▲", "better") if diff > 0 else (("▼", "worse") if diff < 0 else ("=", "same"))
    s = f"{abs(diff):.1f}"
    if _check_lang(lang) == "de":
        s = s.replace(".", ",")
    sign = "+" if diff > 0 else ("−" if diff < 0 else "±")
    return f"{arrow} {sign}{s} {'Pp' if lang == 'de' else 'pp'}", cls


def day(d: datetime | date | None, lang: str, tz: str = DEFAULT_TIMEZONE) -> str:
    """'9 Nov 2026' / '9. Nov 2026' (a date in words, for short notes)."""
    if d is None:
        return DASH
    if isinstance(d, datetime):
        d = to_local(d, tz).date()
    mon = MONTHS_SHORT[_check_lang(lang)][d.month - 1]
    return f"{d.day}. {mon} {d.year}" if lang == "de" else f"{d.day} {mon} {d.year}"


def trend_rate(p, which: str, lang: str) -> str:
    """A trend month's compliance: '82 %' from 5 rated incidents, '1/1' below, '–' for none."""
    if p.counts_only(which):
        return f"{number(getattr(p, f'{which}_met'), lang)}/{number(getattr(p, f'{which}_rated'), lang)}"
    return rate(getattr(p, f"{which}_rate"), lang, places=0)


def status(value: str, lang: str) -> str:
    return STATUSES[_check_lang(lang)].get(value, value)


def clock_state(value: str, lang: str) -> str:
    return CLOCK_STATES[_check_lang(lang)][value]


def tier(value: str | None, lang: str) -> str:
    if value is None:
        return text("no_contract", lang)
    return TIERS[_check_lang(lang)].get(value, value.capitalize())


def met_label(met: bool | None, has_target: bool, lang: str) -> str:
    if met is True:
        return text("met", lang)
    if met is False:
        return text("breached", lang)
    return text("pending", lang) if has_target else text("no_target", lang)


def weekly_hours(hours: tuple[tuple[str, str, str], ...], lang: str) -> str:
    """(('mon','09:00','17:00'), ... ('fri', ...)) -> 'Monday to Friday, 09:00 to 17:00'."""
    lang = _check_lang(lang)
    names = WEEKDAYS[lang]
    to_word, and_word, clock = (" to ", " and ", "") if lang == "en" else (" bis ", " und ", " Uhr")
    # group consecutive weekdays with the same window
    groups: list[tuple[list[str], str, str]] = []
    for day, start, end in sorted(hours, key=lambda h: _WEEKDAY_ORDER.index(h[0])):
        if (groups and groups[-1][1:] == (start, end)
                and _WEEKDAY_ORDER.index(groups[-1][0][-1]) + 1 == _WEEKDAY_ORDER.index(day)):
            groups[-1][0].append(day)
        else:
            groups.append(([day], start, end))
    parts = []
    for days, start, end in groups:
        span = names[days[0]] if len(days) == 1 else f"{names[days[0]]}{to_word}{names[days[-1]]}"
        parts.append(f"{span}, {start}{to_word}{end}{clock}")
    return and_word.join(parts) if len(parts) <= 2 else "; ".join(parts)


def methodology(policy, lang: str) -> list[tuple[str, str]]:
    """(heading, paragraph) pairs of the last page, for the given policy text."""
    lang = _check_lang(lang)
    country = COUNTRIES[lang].get(policy.holidays_country, policy.holidays_country)
    if lang == "de":
        holidays = f"bundesweiten gesetzlichen Feiertagen in {country}"
        if policy.holidays_subdivision:
            holidays = f"gesetzlichen Feiertagen in {country} ({policy.holidays_subdivision})"
        extra = (", außerdem am " + ", ".join(date_local(date.fromisoformat(d), lang)
                                              for d in policy.extra_closed_dates)
                 if policy.extra_closed_dates else "")
    else:
        holidays = f"{country}'s nationwide public holidays"
        if policy.holidays_subdivision:
            holidays = f"the public holidays of {country} ({policy.holidays_subdivision})"
        extra = (", and also on " + ", ".join(policy.extra_closed_dates)
                 if policy.extra_closed_dates else "")
    values = {
        "hours": weekly_hours(policy.weekly_hours, lang),
        "tz": policy.timezone,
        "day_hours": number(policy.business_day_hours, lang),
        "seven_days": number(7 * policy.business_day_hours, lang),
        "holidays": holidays,
        "extra": extra,
        "pause": ", ".join(status(s, lang) for s in policy.pause_statuses),
    }
    return [(text(key, lang), para.format(**values)) for key, para in METHODOLOGY[lang].items()]


def severity_definitions(policy, lang: str) -> list[tuple[int, str]]:
    defs = policy.severity_definitions
    if _check_lang(lang) == "de":
        defs = policy.severity_definitions_de or {
            k: SEED_SEVERITY_DEFINITIONS_DE.get(k, v) for k, v in defs.items()}
    return sorted(defs.items())


def make_filters() -> dict[str, object]:
    """Jinja filters reading `lang` and `tz` from the template context."""

    def ctx_lang(ctx) -> str:
        return ctx["lang"]

    def ctx_tz(ctx) -> str:
        return ctx["tz"]

    return {
        "duration": pass_context(lambda ctx, v: duration(v, ctx_lang(ctx))),
        "number": pass_context(lambda ctx, v: number(v, ctx_lang(ctx))),
        "rate": pass_context(lambda ctx, v: rate(v, ctx_lang(ctx))),
        "dt": pass_context(lambda ctx, v: datetime_local(v, ctx_lang(ctx), ctx_tz(ctx))),
        "date": pass_context(lambda ctx, v: date_local(v, ctx_lang(ctx), ctx_tz(ctx))),
        "month_name": pass_context(lambda ctx, v: month_name(v, ctx_lang(ctx))),
        "month_short": pass_context(lambda ctx, v: month_short(v, ctx_lang(ctx))),
        "rate_short": pass_context(lambda ctx, v: rate(v, ctx_lang(ctx), places=0)),
        "target": pass_context(lambda ctx, v: target(v, ctx_lang(ctx))),
        "status": pass_context(lambda ctx, v: status(v, ctx_lang(ctx))),
        "trend_rate": pass_context(lambda ctx, v, which: trend_rate(v, which, ctx_lang(ctx))),
        "compliance": pass_context(lambda ctx, v: compliance(v, ctx_lang(ctx))),
        "counts": pass_context(lambda ctx, v: counts(v, ctx_lang(ctx))),
        "delta": pass_context(lambda ctx, v, prev: delta(v, prev, ctx_lang(ctx))),
        "day": pass_context(lambda ctx, v: day(v, ctx_lang(ctx), ctx_tz(ctx))),
        "since": pass_context(lambda ctx, v: fmt.since(to_local(v, ctx_tz(ctx)), ctx_lang(ctx))),
        "clock_state": pass_context(lambda ctx, v: clock_state(v, ctx_lang(ctx))),
        "tier": pass_context(lambda ctx, v: tier(v, ctx_lang(ctx))),
        "met": pass_context(lambda ctx, v, has_target=True: met_label(v, has_target,
                                                                       ctx_lang(ctx))),
    }


def make_globals() -> dict[str, object]:
    @pass_context
    def t(ctx, key: str, **kwargs: object) -> str:
        return text(key, ctx["lang"], **kwargs)

    return {"t": t}
