"""Seeded demo data: a realistic canonical ticket export (data-contract.md, part A).

``write_demo_export(out_dir)`` writes ``tickets.csv``, ``ticket_events.csv``,
``contracts.csv`` and ``invoices.csv`` for a fictitious support desk: customers on
professional / enterprise / gold contracts (with upgrades and downgrades over time),
tickets whose arrival follows business hours (but also nights, weekends, German
holidays and DST switch days), and event histories drawn around the SLA targets of
``config/sla-policy.yaml`` (some beyond them). Gold customers get annual invoices,
mostly correct, with a few deliberate billing anomalies; ``bad_rows=True`` adds a
handful of malformed rows so that the rejects path shows up in the demo.

Everything is vectorised (numpy + pyarrow) and written in chunks, so
``incidents=10_000_000`` fits in a few hundred MB of memory. The output is a pure
function of the arguments: same arguments => byte-identical files.

Deliberate anomalies (fixed ids, so tests and demos can find them):

* tickets.csv: ``BAD-NAIVE-TS`` (created_at without offset), ``BAD-SEV-5`` (severity 5),
  ``BAD-DUPLICATE`` twice with different content (conflicting duplicate id).
* ticket_events.csv: an event for the unknown ticket ``T99999999``; on the first
  ticket (the earliest one, id ``T00000001``) a status ``escalated`` (unknown status)
  and a severity change to ``5``; one reply for ``BAD-DUPLICATE`` (rejected with it).
* contracts.csv: customer ``C<customers+1>`` (no tickets) with valid_to before valid_from.
* invoices.csv (see ``_invoices``): one under-billed, one over-billed, one overlapping
  (double-billed) invoice, one invoice for a customer who never had Gold, and one
  annual Gold period left un-invoiced -- each on a different customer.
"""

from __future__ import annotations

import calendar as _cal
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sla.calendar import build_business_days
from sla.months import last_complete_month, month_bounds, shift_month, shift_month_start
from sla.policy import DEFAULT_POLICY_PATH, Policy, load_policy, policy_from_dict

__all__ = ["write_demo_export", "HEADERS", "GOLD_MONTHLY_FEE"]

HEADERS: dict[str, list[str]] = {
    "tickets.csv": ["ticket_id", "customer_id", "subject", "severity", "created_at", "channel"],
    "ticket_events.csv": ["ticket_id", "occurred_at", "kind", "actor", "value"],
    "contracts.csv": ["customer_id", "customer_name", "tier", "valid_from", "valid_to", "account_manager", "terms",
                      "account_manager_name"],
    "invoices.csv": ["invoice_id", "customer_id", "issued_on", "period_start", "period_end", "amount_eur"],
    "exclusions.csv": ["ticket_id", "metric", "reason", "approved_by", "approved_at"],
}

#: the demo's policy (written next to the export as sla-policy.yaml): the shipped policy, a few
#: customer term sets, and a second version in force from the first of the month DEMO_VERSION_MONTHS
#: before the cut-off's month (Gold EUR 1,599 and Gold severity 2 resolution in 2 business days)
DEMO_POLICY_FILE = "sla-policy.yaml"
DEMO_VERSION_MONTHS = 6
DEMO_TERMS = {
    "gold-6": {"description": "Gold with 6 included incidents and a 4-hour severity-1 response",
               "monthly_incident_quota": 6, "targets": {1: {"first_response": "4 business hours"}}},
    "gold-discount": {"description": "Gold at a negotiated fee", "monthly_price": "1199.00"},
    "enterprise-fast": {"description": "Enterprise with a 4-hour severity-1 response",
                        "targets": {1: {"first_response": "4 business hours"}}},
}
EXCLUSION_REASONS = ("Customer's mail server rejected our replies (outage on their side)",
                     "Customer asked us to keep the incident open for their own tests",
                     "Severity set by mistake; agreed with the customer")
APPROVERS = ("Head of Support", "Support Team Lead")
#: exclusions the demo approves after its earlier delivery (so the reporting month shows a restatement)
LATE_EXCLUSIONS = 4


def earlier_delivery(as_of: dt.datetime, tz) -> tuple[str, dt.datetime]:
    """The demo's earlier delivery (issue 17): the report of the month before the reporting month,
    as `sla deliver` would have sent it at a cut-off three days into the reporting month (00:00
    local). `sla demo` records it, so the reporting month's PDFs show "changes to earlier reports"
    (clocks that ran on after it, and exclusions approved after it)."""
    reporting = last_complete_month(as_of, tz)
    first, _ = month_bounds(reporting)
    cutoff = dt.datetime.combine(first + dt.timedelta(days=3), dt.time(0, 0), tz)
    return shift_month(reporting, -1), cutoff


def _contract_terms(c: int, tier: int) -> str:
    """A few customers have their own terms (deterministic: no draw from the seeded stream)."""
    if tier == 2 and c % 7 == 3:
        return "gold-6"
    if tier == 2 and c % 11 == 5:
        return "gold-discount"
    if tier == 1 and c % 13 == 2:
        return "enterprise-fast"
    return ""


def demo_policy_data(as_of_date: dt.date, months: int) -> dict:
    """The demo policy as a mapping (see DEMO_POLICY_FILE)."""
    import yaml

    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["terms"] = DEMO_TERMS
    y, m = _add_months(as_of_date.year, as_of_date.month, -min(DEMO_VERSION_MONTHS, months))
    data["versions"] = [{"in_force_from": dt.date(y, m, 1).isoformat(),
                         "tiers": {"gold": {"monthly_price": "1599.00", "targets": {2: {"resolution": "2 business days"}}}}}]
    return data

TIERS = ("professional", "enterprise", "gold")
TIER_SHARE = (0.50, 0.35, 0.15)
SEVERITY_SHARE = (0.05, 0.20, 0.45, 0.30)
CHANNELS = ("email", "chat", "phone", "video", "web")
CHANNEL_SHARE = (0.40, 0.20, 0.15, 0.05, 0.20)
GOLD_MONTHLY_FEE = Decimal("1499.00")
CHUNK_TICKETS = 500_000
_DAY = 86_400
_HORIZON_DAYS = 450  # business calendar beyond as_of (events past as_of are dropped)

# Nominal durations (business hours) used to draw times when the policy has no target.
_NOMINAL_FR_H = {1: 8, 2: 16, 3: 24, 4: 24}
_NOMINAL_RES_H = {1: 32, 2: 56, 3: 112, 4: 160}

ACCOUNT_MANAGERS = (
    "lena.hoffmann@sla-demo.example",
    "markus.bauer@sla-demo.example",
    "sabine.krueger@sla-demo.example",
    "david.osei@sla-demo.example",
    "julia.nowak@sla-demo.example",
    "ahmet.demir@sla-demo.example",
)
ACCOUNT_MANAGER_NAMES = ("Lena Hoffmann", "Markus Bauer", "Sabine Krüger", "David Osei", "Julia Nowak", "Ahmet Demir")
AGENTS = (
    "anna.becker", "jonas.weber", "lea.schulz", "mehmet.yilmaz", "sophie.wagner",
    "lukas.fischer", "marie.koch", "tobias.richter", "emma.klein", "felix.wolf",
    "hannah.schroeder", "noah.neumann",
)
_SPECIAL_NAMES = (
    "Müller & Söhne GmbH",
    '<b>Acme</b> & "Co"',
    "Bäckerei Größenwahn KG",
    'Schmidt, Jones & Partners "Legal" LLP',
    "O'Reilly Systems Ltd.",
    "Zürich Süd Versicherungs-AG",
    "Ærø Logistik ApS",
    "Łódź Software Sp. z o.o.",
)
_NAME_A = (
    "Nord", "Süd", "Alpen", "Rhein", "Elb", "Havel", "Isar", "Main", "Spree", "Weser",
    "Blue", "Bright", "Silver", "Green", "Quantum", "Vector", "Polar", "Nova", "Atlas", "Orbit",
    "Kraft", "Stern", "Falken", "Linden", "Eichen", "Brücken", "Hafen", "Werk", "Sonnen", "Berg",
)
_NAME_B = (
    "Logistik", "Maschinenbau", "Software", "Medien", "Energie", "Handel", "Consulting", "Pharma",
    "Systems", "Analytics", "Robotics", "Foods", "Textil", "Bau", "Versand", "Digital",
    "Finanz", "Labs", "Mobility", "Telecom",
)
_NAME_C = ("GmbH", "AG", "SE", "GmbH & Co. KG", "KGaA", "Ltd.", "Inc.", "e.K.", "B.V.", "S.A.")

_SUBJECT_TEMPLATES = (
    "Login fails after update of {p}",
    "{p}: export to CSV truncates rows",
    "Cannot reach {p} since this morning",
    "Slow response times in {p}",
    "Question: how do I configure \"{p}\" for SSO?",
    "Fehler beim Öffnen von {p} – bitte prüfen",
    "Größenänderung im {p}-Dashboard schlägt fehl",
    "Invoice PDF from {p} shows wrong € amount",
    "Feature request: dark mode for {p} 🌙",
    "{p} returns HTTP 502, please help!",
    "Data missing in {p} report, see attached",
    "<script>alert('x')</script> shown in {p} header",
    "Password reset e-mail for {p} never arrives",
    "{p} crashes when uploading files > 2 GB",
    "Sync between {p} and SAP stopped, urgent",
    "Multi-line issue in {p}:\nstep 1 fails,\nstep 2 hangs",
    "Wrong time zone (CET/CEST) in {p} timestamps",
    "Access for new colleague to {p}; \"admin\" role",
    "{p} licence count incorrect",
    "Scheduled job in {p} ran twice",
)
_PRODUCTS = ("Portal", "Sync Agent", "Reporting", "Billing API", "SSO (SAML)", "Mobile App", "Data Hub")

# Event vocabularies (codes index into these lists).
_KINDS = ("reply", "status", "severity")
_VALUES = ("", "new", "open", "pending", "on_hold", "solved", "closed", "1", "2", "3", "4")
_V = {v: i for i, v in enumerate(_VALUES)}
_ACTORS = ("agent", "customer", "system") + AGENTS
_A_AGENT, _A_CUSTOMER, _A_SYSTEM, _A_LOGIN0 = 0, 1, 2, 3
_K_REPLY, _K_STATUS, _K_SEVERITY = 0, 1, 2


# --------------------------------------------------------------------------- helpers
def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_line(fields: list[str]) -> str:
    return ",".join(_csv_field(f) for f in fields) + "\n"


def _add_months(year: int, month: int, k: int) -> tuple[int, int]:
    first = shift_month_start(dt.date(year, month, 1), k)
    return first.year, first.month


def _put_digits(buf: np.ndarray, col: int, val: np.ndarray, width: int) -> None:
    val = val.astype(np.int64, copy=False)
    for k in range(width):
        buf[:, col + width - 1 - k] = 48 + (val // (10**k)) % 10


def _fixed_strings(buf: np.ndarray) -> pa.Array:
    n, w = buf.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf)))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    p = prefix.encode()
    buf = np.empty((len(numbers), len(p) + width), dtype=np.uint8)
    buf[:, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    _put_digits(buf, len(p), numbers, width)
    return _fixed_strings(buf)


def _lines(columns: list[pa.Array]) -> pa.Buffer:
    """CSV data lines (values already CSV-safe) as one bytes object."""
    row = pc.binary_join_element_wise(*columns, ",")
    row = pc.binary_join_element_wise(row, "", "\n")
    if isinstance(row, pa.ChunkedArray):
        row = row.combine_chunks()
    offsets = np.frombuffer(row.buffers()[1], dtype=np.int32, count=len(row) + 1, offset=row.offset * 4)
    return row.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


class _Calendar:
    """Per local day: start instant, business window (UTC epoch seconds) and cumulative business time,
    as numpy arrays so that millions of incidents are placed at once."""

    def __init__(self, policy, first: dt.date, last: dt.date, tz):
        # the business windows are the real calendar's (sla.calendar), indexed by local day here
        n = (last - first).days + 2
        business = {d.day: d for d in build_business_days(policy.calendar, first, first + dt.timedelta(days=n - 1))}
        self.first = first
        self.day_start = np.empty(n, np.int64)
        self.open = np.empty(n, np.int64)
        self.length = np.zeros(n, np.int64)
        for i in range(n):
            d = first + dt.timedelta(days=i)
            self.day_start[i] = int(dt.datetime.combine(d, dt.time(0), tzinfo=tz).timestamp())
            if d in business:
                self.open[i], self.length[i] = business[d].open_epoch, business[d].seconds
            else:
                self.open[i] = self.day_start[i]
        self.cum_start = np.concatenate([[0], np.cumsum(self.length)[:-1]])
        self.cum_end = self.cum_start + self.length
        # hourly UTC offsets for formatting (transitions happen on whole UTC hours)
        self.h0 = int(self.day_start[0]) // 3600
        hours = (int(self.day_start[-1]) // 3600) - self.h0 + 48
        utc = dt.timezone.utc
        self.hour_offset = np.array(
            [
                int(dt.datetime.fromtimestamp((self.h0 + h) * 3600, utc).astimezone(tz).utcoffset().total_seconds())
                for h in range(hours)
            ],
            dtype=np.int64,
        )

    def day_index(self, t: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.day_start, t, side="right") - 1, 0, len(self.day_start) - 1)

    def biz_at(self, t: np.ndarray) -> np.ndarray:
        i = self.day_index(t)
        return self.cum_start[i] + np.clip(t - self.open[i], 0, self.length[i])

    def biz_inverse(self, b: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.cum_end, b, side="right")
        over = i >= len(self.cum_end)
        i = np.minimum(i, len(self.cum_end) - 1)
        t = self.open[i] + (b - self.cum_start[i])
        return np.where(over, self.day_start[-1] + _DAY, t)

    def add_business(self, t: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        return self.biz_inverse(self.biz_at(t) + seconds.astype(np.int64))

    def offsets(self, t: np.ndarray) -> np.ndarray:
        return self.hour_offset[np.clip(t // 3600 - self.h0, 0, len(self.hour_offset) - 1)]

    def format(self, t: np.ndarray) -> pa.Array:
        """ISO 8601 local time with offset, e.g. 2026-03-06T16:00:00+01:00."""
        t = np.asarray(t, dtype=np.int64)
        off = self.offsets(t)
        loc = t + off
        days = loc // _DAY
        sod = loc - days * _DAY
        d = days.astype("datetime64[D]")
        months = d.astype("datetime64[M]")
        year = months.astype(np.int64) // 12 + 1970
        month = months.astype(np.int64) % 12 + 1
        day = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
        buf = np.empty((len(t), 25), dtype=np.uint8)
        _put_digits(buf, 0, year, 4)
        buf[:, 4] = ord("-")
        _put_digits(buf, 5, month, 2)
        buf[:, 7] = ord("-")
        _put_digits(buf, 8, day, 2)
        buf[:, 10] = ord("T")
        _put_digits(buf, 11, sod // 3600, 2)
        buf[:, 13] = ord(":")
        _put_digits(buf, 14, (sod // 60) % 60, 2)
        buf[:, 16] = ord(":")
        _put_digits(buf, 17, sod % 60, 2)
        buf[:, 19] = np.where(off < 0, ord("-"), ord("+"))
        aoff = np.abs(off)
        _put_digits(buf, 20, aoff // 3600, 2)
        buf[:, 22] = ord(":")
        _put_digits(buf, 23, (aoff // 60) % 60, 2)
        return _fixed_strings(buf)


# --------------------------------------------------------------------------- customers & contracts
def _customers(rng, n: int, span_first: dt.date, as_of_date: dt.date):
    width = max(4, len(str(n + 1)))
    ids = [f"C{i + 1:0{width}d}" for i in range(n)]
    combos = [(a, b, c) for a in _NAME_A for b in _NAME_B for c in _NAME_C]
    order = rng.permutation(len(combos))
    names = []
    for i in range(n):
        a, b, c = combos[order[i % len(combos)]]
        name = f"{a}{b.lower()} {c}" if i % 3 == 0 else f"{a} {b} {c}"
        if i >= len(combos):
            name = f"{name} {i // len(combos) + 1}"
        names.append(name)
    # special names at spread-out, seed-independent positions
    for k, special in enumerate(_SPECIAL_NAMES):
        pos = (k * 37 + 5) % n if n > len(_SPECIAL_NAMES) else k
        if pos < n:
            names[pos] = special
    managers = rng.integers(0, len(ACCOUNT_MANAGERS), n)
    tier0 = rng.choice(3, size=n, p=TIER_SHARE)
    if n >= 3:  # every tier present
        for t in range(3):
            if not (tier0 == t).any():
                tier0[n - 1 - t] = t
    activity = rng.lognormal(-0.125, 0.5, n) * 1.15

    span_days = (as_of_date - span_first).days
    contracts: list[tuple[int, dt.date, dt.date | None, int]] = []  # (cust, from, to, tier)
    n_changes = rng.choice(3, size=n, p=(0.70, 0.22, 0.08))
    start_back = rng.integers(0, 3 * 365, n)
    for c in range(n):
        start = span_first - dt.timedelta(days=int(start_back[c]))
        changes: list[dt.date] = []
        if n_changes[c] and span_days > 60:
            offs = np.unique(rng.integers(20, span_days - 10, int(n_changes[c])))
            changes = [span_first + dt.timedelta(days=int(o)) for o in offs]
        tiers = [int(tier0[c])]
        for _ in changes:
            cur = tiers[-1]
            up = rng.random() < 0.6
            nxt = cur + 1 if (up and cur < 2) or cur == 0 else cur - 1
            tiers.append(nxt)
        froms = [start] + changes
        for k, f in enumerate(froms):
            to = froms[k + 1] - dt.timedelta(days=1) if k + 1 < len(froms) else None
            contracts.append((c, f, to, tiers[k]))
    return ids, names, managers, activity, contracts


def _gold_owed(start: dt.date, end: dt.date, fee: Decimal | Callable[[dt.date], Decimal] = GOLD_MONTHLY_FEE) -> Decimal:
    """Owed for an all-Gold period [start, end] (inclusive): per month the sum of the days' fees over
    the days of the month, rounded half-up (`fee`: one fee, or the fee of a day)."""
    total = Decimal("0.00")
    y, m = start.year, start.month
    while dt.date(y, m, 1) <= end:
        dim = _cal.monthrange(y, m)[1]
        a = max(start, dt.date(y, m, 1))
        b = min(end, dt.date(y, m, dim))
        days = (b - a).days + 1
        if callable(fee):
            fees = sum((fee(a + dt.timedelta(days=i)) for i in range(days)), Decimal(0))
        else:
            fees = fee * days
        total += (fees / dim).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        y, m = _add_months(y, m, 1)
    return total


def _late_exclusions(out: Path, as_of: dt.datetime, tz) -> list[list[str]]:
    """Resolution exclusions for a few tickets of the earlier-delivered month, approved a week after
    that delivery: the delivered report counted them, the next one restates them."""
    import duckdb

    month, delivered = earlier_delivery(as_of, tz)
    approved = delivered + dt.timedelta(days=7)
    if approved >= as_of:
        return []
    first, last = month_bounds(month)
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{tz.key}'")
    # severity 1-2 incidents of Gold or Enterprise customers (one each), created in that month (local dates)
    picked = con.execute(
        """SELECT t.ticket_id FROM read_csv(?, all_varchar = true, header = true) t
           JOIN read_csv(?, all_varchar = true, header = true) c  -- the contract in force: a plan with
             ON c.customer_id = t.customer_id AND c.tier IN ('gold', 'enterprise')  -- resolution targets
            AND CAST(TRY_CAST(t.created_at AS TIMESTAMPTZ) AS DATE)
                BETWEEN CAST(c.valid_from AS DATE) AND coalesce(TRY_CAST(c.valid_to AS DATE), DATE '9999-12-31')
           WHERE t.ticket_id LIKE 'T%' AND t.severity IN ('1', '2')
             AND CAST(TRY_CAST(t.created_at AS TIMESTAMPTZ) AS DATE) BETWEEN ? AND ?
           QUALIFY row_number() OVER (PARTITION BY t.customer_id ORDER BY t.ticket_id) = 1
           ORDER BY t.ticket_id LIMIT ?""",
        [str(out / "tickets.csv"), str(out / "contracts.csv"), first, last, LATE_EXCLUSIONS]).fetchall()
    con.close()
    reason = f"Outage on the customer's side, confirmed after the {month} report"
    return [[t, "resolution", reason, APPROVERS[k % len(APPROVERS)], approved.isoformat()]
            for k, (t,) in enumerate(picked)]


def _write_exclusions(out: Path, as_of_ts: int, tz, bad_rows: bool, every: int = 157, most: int = 12) -> int:
    """exclusions.csv: every `every`-th of the first tickets gets an approved exclusion three days
    after its creation (so the latest ones are approved after the cut-off and do not apply yet), and
    a few tickets of the earlier-delivered month one approved after that delivery."""
    import csv

    rows = []
    with open(out / "tickets.csv", newline="", encoding="utf-8") as fh:
        for n, rec in enumerate(csv.DictReader(fh)):
            if len(rows) >= most or n > every * most * 4:
                break
            if n % every != every // 2 or rec["ticket_id"].startswith("BAD-"):
                continue
            created = dt.datetime.fromisoformat(rec["created_at"])
            k = len(rows)
            rows.append([rec["ticket_id"], ("resolution", "first_response", "both")[k % 3],
                         EXCLUSION_REASONS[k % len(EXCLUSION_REASONS)], APPROVERS[k % len(APPROVERS)],
                         (created + dt.timedelta(days=3)).astimezone(tz).isoformat()])
    if rows:  # one more: approved after the cut-off (does not exist yet in this run)
        later = dt.datetime.fromtimestamp(as_of_ts + 2 * _DAY, tz).isoformat()
        rows.append([rows[0][0], "both", "Approved after the cut-off (demo: not applied yet)", APPROVERS[0], later])
    rows += _late_exclusions(out, dt.datetime.fromtimestamp(as_of_ts, tz), tz)
    if bad_rows:
        good = dt.datetime.fromtimestamp(as_of_ts - 5 * _DAY, tz)
        rows += [
            ["T99999999", "both", "Unknown ticket (demo reject)", APPROVERS[0], good.isoformat()],
            [rows[0][0] if rows else "T99999998", "speed", "Unknown metric (demo reject)", APPROVERS[0], good.isoformat()],
            [rows[0][0] if rows else "T99999998", "resolution", "", APPROVERS[0], good.isoformat()],
            [rows[0][0] if rows else "T99999998", "resolution", "No offset (demo reject)", APPROVERS[0],
             good.replace(tzinfo=None).isoformat()],
        ]
    with open(out / "exclusions.csv", "wb") as fx:
        fx.write(_csv_line(HEADERS["exclusions.csv"]).encode())
        for row in rows:
            fx.write(_csv_line(row).encode())
    return len(rows)


def _add_years(d: dt.date, k: int) -> dt.date:
    try:
        return d.replace(year=d.year + k)
    except ValueError:  # 29 Feb
        return d.replace(year=d.year + k, day=28)


def _invoices(rng, ids, contracts, as_of_date: dt.date, span_first: dt.date, fee: Decimal = GOLD_MONTHLY_FEE,
              policy: Policy | None = None):
    """Annual invoices for Gold contract rows plus deliberate anomalies. With `policy`, an invoice
    owes each day's fee (the version in force that day, the contract's terms)."""
    regular: list[dict] = []
    for c, f, to, tier in contracts:
        if policy is not None:
            terms = _contract_terms(c, tier) or None

            def fee_of(day, terms=terms):
                return policy.version_on(day).tier_figures("gold", terms)[1]
        else:
            fee_of = fee
        if tier != 2:
            continue
        k = 0
        while True:
            ps = _add_years(f, k)
            if ps > as_of_date or (to is not None and ps > to):
                break
            pe = _add_years(f, k + 1) - dt.timedelta(days=1)
            if to is not None:
                pe = min(pe, to)
            regular.append({"c": c, "issued": ps, "ps": ps, "pe": pe, "amount": _gold_owed(ps, pe, fee_of), "tag": "ok"})
            k += 1
    gold_customers = sorted({inv["c"] for inv in regular})
    ever_gold = set(gold_customers)
    order = [gold_customers[i] for i in rng.permutation(len(gold_customers))]
    by_c: dict[int, list[dict]] = {}
    for inv in regular:
        by_c.setdefault(inv["c"], []).append(inv)
    anomalies: list[dict] = []
    used = iter(order)

    def pick(cond) -> int | None:
        for c in used:
            if cond(c):
                return c
        return None

    # un-invoiced Gold period: drop one invoice of a customer with >= 2 invoices
    c = pick(lambda c: len(by_c[c]) >= 2)
    if c is not None:
        victim = by_c[c][-2]
        regular.remove(victim)
    # under-billed
    c = pick(lambda c: True)
    if c is not None:
        inv = by_c[c][-1]
        inv["amount"] = inv["amount"] - fee if inv["amount"] > fee else inv["amount"] / 2
        inv["amount"] = inv["amount"].quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        inv["tag"] = "under_billed"
    # over-billed
    c = pick(lambda c: True)
    if c is not None:
        inv = by_c[c][-1]
        inv["amount"] += fee
        inv["tag"] = "over_billed"
    # overlap: a quarter inside an existing annual period, billed again later
    c = pick(lambda c: any((i["pe"] - i["ps"]).days >= 200 and i["ps"] + dt.timedelta(days=90) <= as_of_date for i in by_c[c]))
    if c is not None:
        base = next(i for i in by_c[c] if (i["pe"] - i["ps"]).days >= 200 and i["ps"] + dt.timedelta(days=90) <= as_of_date)
        ps = base["ps"] + dt.timedelta(days=90)
        pe = ps + dt.timedelta(days=89)
        anomalies.append({"c": c, "issued": ps, "ps": ps, "pe": pe, "amount": _gold_owed(ps, pe, fee), "tag": "overlap"})
    # not gold: a customer that never had a Gold contract billed a full year
    non_gold = sorted({cc for cc, *_ in contracts} - ever_gold)
    if non_gold:
        c = non_gold[int(rng.integers(0, len(non_gold)))]
        ps = span_first + dt.timedelta(days=31)
        if ps <= as_of_date:
            pe = _add_years(ps, 1) - dt.timedelta(days=1)
            anomalies.append({"c": c, "issued": ps, "ps": ps, "pe": pe, "amount": _gold_owed(ps, pe, fee), "tag": "not_gold"})
    allinv = regular + anomalies
    allinv.sort(key=lambda i: (i["issued"], ids[i["c"]], i["ps"], i["tag"]))
    seq: dict[int, int] = {}
    for inv in allinv:
        y = inv["issued"].year
        seq[y] = seq.get(y, 0) + 1
        inv["id"] = f"INV-{y}-{seq[y]:04d}"
    return allinv


# --------------------------------------------------------------------------- tickets & events
def _lognormal_factor(rng, n, median, sigma, lo, hi):
    return np.clip(rng.lognormal(np.log(median), sigma, n), lo, hi)


def _chunk(rng, cal: _Calendar, ctx: dict, cust: np.ndarray, month: np.ndarray, first_id: int):
    """Generate one chunk of tickets and events; return (ticket lines, event lines, counts)."""
    n = len(cust)
    as_of = ctx["as_of"]
    m_start, m_end = ctx["m_start"], ctx["m_end"]
    # ---- creation time
    mode = rng.random(n)
    u1, u2 = rng.random(n), rng.random(n)
    uni = m_start[month] + (u1 * (m_end[month] - m_start[month])).astype(np.int64)
    # business hours: a random open day of the month, a random second in its window
    od_start, od_len = ctx["od_start"][month], ctx["od_len"][month]
    has_open = od_len > 0
    day = ctx["open_days"][np.minimum(od_start + (u2 * od_len).astype(np.int64), len(ctx["open_days"]) - 1)]
    biz = cal.open[day] + (rng.random(n) * cal.length[day]).astype(np.int64)
    dst_lo, dst_hi = ctx["dst_lo"][month], ctx["dst_hi"][month]
    dst = dst_lo + (rng.random(n) * (dst_hi - dst_lo)).astype(np.int64)
    created = np.where((mode < 0.72) & has_open, biz, uni)
    created = np.where((mode > 0.992) & (dst_hi > dst_lo), dst, created)
    created = np.where(created > as_of, uni, created)
    created = np.minimum(created, as_of)
    order = np.lexsort((cust, created))
    cust, month, created = cust[order], month[order], created[order]
    tid = _ids("T", np.arange(first_id, first_id + n), ctx["id_width"])

    # ---- attributes
    local_day = cal.day_index(created) + ctx["cal_first_ord"]
    key = cust.astype(np.int64) * (1 << 22) + local_day
    ci = np.searchsorted(ctx["contract_key"], key, side="right") - 1
    assert (ctx["contract_cust"][ci] == cust).all(), "demo ticket without contract"
    tier = ctx["contract_tier"][ci]
    sev = rng.choice(4, size=n, p=SEVERITY_SHARE) + 1
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_SHARE)
    subject = rng.integers(0, len(ctx["subjects"]), n)
    agent = rng.integers(0, len(AGENTS), n) + _A_LOGIN0
    fr_target = ctx["fr_target"][tier, sev]
    res_target = ctx["res_target"][tier, sev]

    # ---- events: fixed slots, times via a per-ticket cursor
    S = 20
    T = np.zeros((n, S), np.int64)
    P = np.zeros((n, S), bool)
    K = np.zeros(S, np.int8)
    A = np.zeros((n, S), np.int16)
    Vv = np.zeros((n, S), np.int8)
    cur = created.copy()
    slot = [0]

    def emit(t, mask, kind, actor, value):
        nonlocal cur
        s = slot[0]
        slot[0] += 1
        t = np.maximum(t, cur)
        T[:, s], P[:, s], K[s], A[:, s], Vv[:, s] = t, mask, kind, actor, value
        cur = np.where(mask, t, cur)
        return t

    everyone = np.ones(n, bool)
    r = rng.random((n, 12))
    no_reply_solve = r[:, 0] < 0.03  # resolved before any agent reply
    stuck = r[:, 1] < 0.01  # never solved
    auto_reply = (r[:, 2] < 0.45) & np.isin(channel, [0, 4])
    dialogue = (r[:, 3] < 0.25) & ~no_reply_solve
    pending = (r[:, 4] < 0.22) & ~no_reply_solve
    pending_answered = pending & ((r[:, 5] > 0.08) | ~stuck)
    on_hold = (r[:, 6] < 0.03) & ~no_reply_solve
    sev_change = r[:, 7] < 0.03
    solution_reply = (r[:, 8] < 0.3) & ~no_reply_solve
    reopen = (r[:, 9] < 0.05) & ~stuck
    solved_by_customer = no_reply_solve & (r[:, 10] < 0.4)

    emit(created, everyone, _K_STATUS, _A_SYSTEM, _V["new"])
    emit(created + rng.integers(5, 90, n), auto_reply, _K_REPLY, _A_SYSTEM, 0)
    fr = cal.add_business(created, fr_target * _lognormal_factor(rng, n, 0.45, 0.75, 0.01, 6.0))
    fr = emit(fr, ~no_reply_solve, _K_REPLY, _A_AGENT, 0)
    emit(fr + rng.integers(0, 120, n), ~no_reply_solve, _K_STATUS, agent, _V["open"])
    # severity change (mostly escalations) early in the life
    up = rng.random(n) < 0.6
    new_sev = np.where(up, sev - 1, sev + 1)
    new_sev = np.where(new_sev < 1, 2, np.where(new_sev > 4, 3, new_sev))
    emit(cur + rng.integers(600, _DAY, n), sev_change, _K_SEVERITY, agent, _V["1"] + new_sev - 1)
    # a customer/agent exchange
    t = emit(cur + (_lognormal_factor(rng, n, 3.0, 1.0, 0.05, 72) * 3600).astype(np.int64), dialogue, _K_REPLY, _A_CUSTOMER, 0)
    emit(cal.add_business(t, (_lognormal_factor(rng, n, 2.0, 0.8, 0.1, 24) * 3600).astype(np.int64)),
         dialogue & (r[:, 11] < 0.8), _K_REPLY, _A_AGENT, 0)
    # waiting for the customer
    p_start = emit(cur + rng.integers(60, 3600, n), pending, _K_STATUS, agent, _V["pending"])
    p_end = emit(p_start + (_lognormal_factor(rng, n, 20.0, 1.0, 0.2, 24 * 20) * 3600).astype(np.int64),
                 pending_answered, _K_REPLY, _A_CUSTOMER, 0)
    emit(p_end + rng.integers(0, 300, n), pending_answered, _K_STATUS, _A_CUSTOMER, _V["open"])
    paused = np.where(pending_answered, cal.biz_at(p_end) - cal.biz_at(p_start), 0)
    # on hold (waiting for a third party; does not pause the clock)
    h = emit(cur + rng.integers(3600, _DAY, n), on_hold, _K_STATUS, agent, _V["on_hold"])
    emit(h + rng.integers(_DAY, 5 * _DAY, n), on_hold, _K_STATUS, agent, _V["open"])
    # resolution, drawn around the target (measured from creation, plus paused time)
    res_biz = (res_target * _lognormal_factor(rng, n, 0.5, 0.8, 0.02, 5.0)).astype(np.int64)
    quick = (rng.integers(600, 4 * 3600, n)).astype(np.int64)
    solved = cal.add_business(created, np.where(no_reply_solve, quick, res_biz + paused))
    solved = np.maximum(solved, cur + rng.integers(60, 1800, n))
    is_solved = ~stuck & ~(pending & ~pending_answered)
    emit(solved - rng.integers(30, 600, n), solution_reply & is_solved, _K_REPLY, _A_AGENT, 0)
    s1 = emit(solved, is_solved, _K_STATUS, np.where(solved_by_customer, _A_CUSTOMER, agent), _V["solved"])
    # reopened: customer replies after the solve, agent works again, solved again
    ro = reopen & is_solved
    t = emit(s1 + (_lognormal_factor(rng, n, 20.0, 1.0, 0.5, 24 * 10) * 3600).astype(np.int64), ro, _K_REPLY, _A_CUSTOMER, 0)
    t = emit(t + rng.integers(0, 300, n), ro, _K_STATUS, _A_CUSTOMER, _V["open"])
    t = emit(cal.add_business(t, (_lognormal_factor(rng, n, 2.0, 0.8, 0.1, 16) * 3600).astype(np.int64)), ro, _K_REPLY, _A_AGENT, 0)
    emit(cal.add_business(t, (_lognormal_factor(rng, n, 4.0, 0.8, 0.1, 40) * 3600).astype(np.int64)), ro, _K_STATUS, agent, _V["solved"])
    emit(cur + rng.integers(3 * _DAY, 7 * _DAY, n), is_solved, _K_STATUS, _A_SYSTEM, _V["closed"])
    used = slot[0]
    T, P, A, Vv = T[:, :used], P[:, :used], A[:, :used], Vv[:, :used]
    P &= T <= as_of

    rows, slots = np.nonzero(P)
    ev_t = T[rows, slots]
    idx = pa.array(rows)
    ev_cols = [
        tid.take(idx),
        cal.format(ev_t),
        ctx["kinds"].take(pa.array(K[slots])),
        ctx["actors"].take(pa.array(A[rows, slots])),
        ctx["values"].take(pa.array(Vv[rows, slots])),
    ]
    t_cols = [
        tid,
        ctx["cust_ids"].take(pa.array(cust)),
        ctx["subjects"].take(pa.array(subject)),
        ctx["sevs"].take(pa.array(sev - 1)),
        cal.format(created),
        ctx["channels"].take(pa.array(channel)),
    ]
    first_ticket = (tid[0].as_py(), int(created[0]), int(cust[0])) if n else None
    return _lines(t_cols), _lines(ev_cols), n, len(rows), first_ticket


# --------------------------------------------------------------------------- entry point
def write_demo_export(
    out_dir: str | Path,
    *,
    customers: int = 300,
    months: int = 24,
    seed: int = 7,
    as_of: dt.datetime | None = None,
    incidents: int | None = None,
    bad_rows: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write a seeded demo export (tickets, events, contracts, invoices) into ``out_dir``.

    Returns the number of data rows written per file (header excluded), keyed by file name.
    """
    if customers < 1:
        raise ValueError("customers must be >= 1")
    if months < 0:
        raise ValueError("months must be >= 0")
    if incidents is not None and incidents < 0:
        raise ValueError("incidents must be >= 0")
    if as_of is None:
        as_of = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    elif as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    policy = load_policy()
    tz = policy.calendar.tz
    rng = np.random.default_rng(seed)
    as_of_ts = int(as_of.timestamp())
    as_of_local = dt.datetime.fromtimestamp(as_of_ts, tz)
    as_of_date = as_of_local.date()
    y0, m0 = _add_months(as_of_date.year, as_of_date.month, -months)
    span_first = dt.date(y0, m0, 1)
    cal = _Calendar(policy, span_first - dt.timedelta(days=1), as_of_date + dt.timedelta(days=_HORIZON_DAYS), tz)

    # ---- months of the span
    nm = months + 1
    m_start = np.empty(nm, np.int64)
    m_end = np.empty(nm, np.int64)
    mid_day = np.empty(nm, np.int64)
    od_start = np.zeros(nm, np.int64)
    od_len = np.zeros(nm, np.int64)
    dst_lo = np.zeros(nm, np.int64)
    dst_hi = np.zeros(nm, np.int64)
    open_days: list[int] = []
    for k in range(nm):
        y, m = _add_months(y0, m0, k)
        first = dt.date(y, m, 1)
        ny, nmo = _add_months(y, m, 1)
        nxt = dt.date(ny, nmo, 1)
        i0 = (first - cal.first).days
        i1 = (nxt - cal.first).days
        m_start[k] = cal.day_start[i0]
        m_end[k] = min(int(cal.day_start[i1]), as_of_ts + 1)
        mid_day[k] = first.toordinal() + 14
        od_start[k] = len(open_days)
        for i in range(i0, i1):
            if cal.length[i] > 0 and cal.open[i] + cal.length[i] <= as_of_ts:
                open_days.append(i)
            if cal.day_start[i + 1] - cal.day_start[i] != _DAY and cal.day_start[i] <= as_of_ts:
                dst_lo[k], dst_hi[k] = cal.day_start[i], min(int(cal.day_start[i + 1]), as_of_ts + 1)
        od_len[k] = len(open_days) - od_start[k]
    month_frac = (m_end - m_start) / np.array(
        [
            cal.day_start[(dt.date(*_add_months(y0, m0, k + 1), 1) - cal.first).days] - m_start[k]
            for k in range(nm)
        ]
    )

    # ---- customers and contracts
    ids, names, managers, activity, contracts = _customers(rng, customers, span_first, as_of_date)
    c_cust = np.array([c for c, *_ in contracts], np.int64)
    c_from = np.array([f.toordinal() for _, f, _, _ in contracts], np.int64)
    c_tier = np.array([t for *_, t in contracts], np.int64)
    contract_key = c_cust * (1 << 22) + c_from
    srt = np.argsort(contract_key, kind="stable")
    contract_key, c_cust, c_tier = contract_key[srt], c_cust[srt], c_tier[srt]

    # ---- ticket volume per customer and month
    cells_c = np.tile(np.arange(customers), nm)  # month-major
    cells_m = np.repeat(np.arange(nm), customers)
    ci = np.searchsorted(contract_key, cells_c * (1 << 22) + mid_day[cells_m], side="right") - 1
    quota = np.array([policy.tiers[t].monthly_incident_quota for t in TIERS], float)
    rate = np.maximum(quota[c_tier[ci]], 0.3) * activity[cells_c] * month_frac[cells_m]
    if incidents is None:
        counts = rng.poisson(rate)
    else:
        counts = rng.multinomial(incidents, rate / rate.sum()) if rate.sum() > 0 else np.zeros_like(cells_c)
    total = int(counts.sum())

    # ---- lookup tables for the chunks
    bds = policy.calendar.business_day_seconds
    fr_target = np.zeros((3, 5), np.int64)
    res_target = np.zeros((3, 5), np.int64)
    targets = {(tier, sev): (fr, res) for tier, sev, fr, res in policy.target_rows}
    for ti, tname in enumerate(TIERS):
        for sev in range(1, 5):
            fr, res = targets.get((tname, sev), (None, None))
            fr_target[ti, sev] = fr if fr else _NOMINAL_FR_H[sev] * 3600
            res_target[ti, sev] = res if res else _NOMINAL_RES_H[sev] * bds // 8
    subjects = [_csv_field(t.format(p=p)) for t in _SUBJECT_TEMPLATES for p in _PRODUCTS]
    ctx = {
        "as_of": as_of_ts,
        "m_start": m_start,
        "m_end": m_end,
        "od_start": od_start,
        "od_len": od_len,
        "open_days": np.array(open_days or [0], np.int64),
        "dst_lo": dst_lo,
        "dst_hi": dst_hi,
        "id_width": max(8, len(str(total))),
        "cal_first_ord": cal.first.toordinal(),
        "contract_key": contract_key,
        "contract_cust": c_cust,
        "contract_tier": c_tier,
        "fr_target": fr_target,
        "res_target": res_target,
        "subjects": pa.array(subjects),
        "cust_ids": pa.array(ids),
        "sevs": pa.array(["1", "2", "3", "4"]),
        "channels": pa.array(CHANNELS),
        "kinds": pa.array(_KINDS),
        "actors": pa.array(_ACTORS),
        "values": pa.array(_VALUES),
    }

    # ---- tickets and events, in chunks of whole (month, customer) cells
    counts_out = {name: 0 for name in HEADERS}
    first_ticket = None
    cum = np.cumsum(counts)
    with open(out / "tickets.csv", "wb") as ft, open(out / "ticket_events.csv", "wb") as fe:
        ft.write(_csv_line(HEADERS["tickets.csv"]).encode())
        fe.write(_csv_line(HEADERS["ticket_events.csv"]).encode())
        lo_cell, done = 0, 0
        while lo_cell < len(counts) and done < total:
            hi_cell = int(np.searchsorted(cum, done + CHUNK_TICKETS, side="right"))
            hi_cell = max(hi_cell, lo_cell + 1)
            sel = slice(lo_cell, hi_cell)
            cust = np.repeat(cells_c[sel], counts[sel])
            month = np.repeat(cells_m[sel], counts[sel])
            if len(cust):
                tl, el, nt, ne, ft0 = _chunk(rng, cal, ctx, cust, month, done + 1)
                ft.write(tl)
                fe.write(el)
                counts_out["tickets.csv"] += nt
                counts_out["ticket_events.csv"] += ne
                first_ticket = first_ticket or ft0
                done += nt
                say(f"demo: {done:,}/{total:,} tickets, {counts_out['ticket_events.csv']:,} events written")
            lo_cell = hi_cell

        if bad_rows:
            bad_day = as_of_local - dt.timedelta(days=10)
            good = dt.datetime.fromtimestamp(as_of_ts - 10 * _DAY, tz).isoformat()
            naive = bad_day.replace(tzinfo=None).isoformat()
            c0 = ids[first_ticket[2]] if first_ticket else ids[0]
            bad_tickets = [
                ["BAD-NAIVE-TS", c0, "Timestamp without offset (demo reject)", "3", naive, "email"],
                ["BAD-SEV-5", c0, "Unknown severity 5 (demo reject)", "5", good, "web"],
                ["BAD-DUPLICATE", c0, "Duplicate id, first version", "2", good, "email"],
                ["BAD-DUPLICATE", c0, "Duplicate id, second version, different", "4", good, "chat"],
            ]
            for row in bad_tickets:
                ft.write(_csv_line(row).encode())
            counts_out["tickets.csv"] += len(bad_tickets)
            bad_events = [
                ["BAD-DUPLICATE", good, "reply", "agent", ""],
                ["T99999999", good, "reply", "customer", ""],
            ]
            if first_ticket:
                t1 = dt.datetime.fromtimestamp(min(first_ticket[1] + 60, as_of_ts), tz).isoformat()
                bad_events += [
                    [first_ticket[0], t1, "status", AGENTS[0], "escalated"],
                    [first_ticket[0], t1, "severity", AGENTS[0], "5"],
                ]
            for row in bad_events:
                fe.write(_csv_line(row).encode())
            counts_out["ticket_events.csv"] += len(bad_events)

    # ---- contracts
    with open(out / "contracts.csv", "wb") as fc:
        fc.write(_csv_line(HEADERS["contracts.csv"]).encode())
        for c, f, to, tier in contracts:
            row = [ids[c], names[c], TIERS[tier], f.isoformat(), to.isoformat() if to else "", ACCOUNT_MANAGERS[managers[c]],
                   _contract_terms(c, tier), ACCOUNT_MANAGER_NAMES[managers[c]]]
            fc.write(_csv_line(row).encode())
        counts_out["contracts.csv"] = len(contracts)
        if bad_rows:
            width = max(4, len(str(customers + 1)))
            vf = as_of_date - dt.timedelta(days=30)
            row = [f"C{customers + 1:0{width}d}", "Dormant Dates GmbH", "enterprise", vf.isoformat(),
                   (vf - dt.timedelta(days=10)).isoformat(), ACCOUNT_MANAGERS[0], "", ACCOUNT_MANAGER_NAMES[0]]
            fc.write(_csv_line(row).encode())
            # a term set the policy does not define (demo reject)
            row = [f"C{customers + 2:0{width}d}", "Unknown Terms AG", "enterprise", vf.isoformat(), "", ACCOUNT_MANAGERS[0],
                   "platinum", ACCOUNT_MANAGER_NAMES[0]]
            fc.write(_csv_line(row).encode())
            counts_out["contracts.csv"] += 2

    # ---- invoices
    fee = policy.tiers["gold"].monthly_price if "gold" in policy.tiers else GOLD_MONTHLY_FEE
    demo_data = demo_policy_data(as_of_date, months)
    demo_policy = policy_from_dict(dict(demo_data), "demo policy")
    invoices = _invoices(rng, ids, contracts, as_of_date, span_first, fee or GOLD_MONTHLY_FEE, demo_policy)
    with open(out / "invoices.csv", "wb") as fi:
        fi.write(_csv_line(HEADERS["invoices.csv"]).encode())
        for inv in invoices:
            row = [inv["id"], ids[inv["c"]], inv["issued"].isoformat(), inv["ps"].isoformat(), inv["pe"].isoformat(),
                   f"{inv['amount']:.2f}"]
            fi.write(_csv_line(row).encode())
        counts_out["invoices.csv"] = len(invoices)

    # ---- exclusions: a few approved ones (one approved after the cut-off) and, with bad_rows, bad ones
    counts_out["exclusions.csv"] = _write_exclusions(out, as_of_ts, tz, bad_rows)
    import yaml

    (out / DEMO_POLICY_FILE).write_text(
        "# The demo's SLA policy: the shipped one, customer term sets and a second version (issue 17).\n"
        + yaml.safe_dump(demo_data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    say(f"demo: done, {counts_out}")
    return counts_out
