"""Deliver the month's customer reports to account managers by e-mail (no Dagster import).

One message per account manager with exactly their customers' PDFs attached and a short
summary per customer. `delivery_log` makes it idempotent: a recipient with a `sent` row for the
month gets nothing again unless `resend`; a failure is logged as `failed`, reported, and retried
on the next run. Before talking to the server a `sending` row is committed with the message's
Message-ID, so a crash between sending and logging cannot go unnoticed: the rerun sends again
with the same Message-ID, which mail systems use to drop the duplicate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sla.db import scalar
from sla.files import write_bytes_atomic
from sla.months import month_bounds
from sla.report_data.models import MIN_RATED
from sla.restatements import keep_delivered

TIER_NAMES = {"professional": "Professional", "enterprise": "Enterprise", "gold": "Gold"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    starttls: bool = False
    mail_from: str = "sla-reports@localhost"
    timeout: float = 30.0


@dataclass(frozen=True)
class CustomerSummary:
    customer_id: str
    customer_name: str
    tier: str | None
    incidents: int
    over_quota: int
    fr_met: int
    fr_breached: int
    res_met: int
    res_breached: int
    open_at_cutoff: int
    report: Path | None
    carried_open: int = 0  # incidents from earlier months still open at the cut-off
    carried_breached: int = 0

    @property
    def breaches(self) -> int:
        return self.fr_breached + self.res_breached

    def rate(self, met: int, breached: int) -> str:
        """The PDF's wording and small-sample rule: a rate from 5 rated incidents, counts below."""
        rated = met + breached
        if not rated:
            return "none rated yet"
        if rated < MIN_RATED:
            return f"{met} of {rated} met"
        return f"{100 * met / rated:.1f} %"

    @property
    def needs_conversation(self) -> bool:
        return bool(self.breaches or self.over_quota or self.carried_open)

    @property
    def urgency(self) -> tuple:
        """Sort key: breaches (this month and in the backlog) first, then backlog, then quota."""
        return (-(self.breaches + self.carried_breached), -self.carried_open, -self.over_quota,
                self.customer_id)

    @property
    def talking_points(self) -> list[str]:
        points = []
        if self.breaches:
            points.append(f"{self.breaches} breached target(s) this month")
        if self.carried_open:
            points.append(f"still open from earlier months: {self.carried_open} "
                          f"({self.carried_breached} breached)")
        if self.over_quota:
            points.append(f"{self.over_quota} incident(s) over the included quota")
        return points


@dataclass(frozen=True)
class Delivery:
    recipient: str
    month: str
    customers: tuple[CustomerSummary, ...]

    @property
    def attachments(self) -> list[Path]:
        return [c.report for c in self.customers if c.report is not None]


@dataclass
class DeliveryResult:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    missing_reports: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"sent: {len(self.sent)}  already sent (skipped): {len(self.skipped)}  failed: {len(self.failed)}"]
        lines += [f"  sent to {r}" for r in self.sent]
        lines += [f"  FAILED {r}: {e} (will be retried on the next run)" for r, e in self.failed.items()]
        lines += [f"  wrote {p}" for p in self.written]
        lines += [f"  no report for {c} (not attached)" for c in self.missing_reports]
        return "\n".join(lines)


def customer_report_path(out_dir: Path, month: str, customer_id: str) -> Path | None:
    """The customer's PDF of the month (`<out>/<YYYY-MM>/customers/<customer_id>-<slug>.pdf`)."""
    folder = Path(out_dir) / month / "customers"
    matches = sorted(p for p in folder.glob("*.pdf") if p.stem == customer_id or p.name.startswith(f"{customer_id}-"))
    return matches[0] if matches else None


def plan_deliveries(con, out_dir: str | Path, month: str) -> tuple[list[Delivery], list[str]]:
    """Recipients = account managers of contracts in force in the month; customers = theirs."""
    first, last = month_bounds(month)
    rows = con.execute(
        """
        WITH managed AS (
            SELECT DISTINCT ON (customer_id) customer_id, customer_name, account_manager, tier
            FROM contracts
            WHERE valid_from <= ? AND coalesce(valid_to, DATE '9999-12-31') >= ?
              AND nullif(trim(account_manager), '') IS NOT NULL
            ORDER BY customer_id, valid_from DESC
        ), figures AS (
            SELECT customer_id, count(*) AS incidents,
                   count(*) FILTER (WHERE over_quota) AS over_quota,
                   count(*) FILTER (WHERE first_response_met) AS fr_met,
                   count(*) FILTER (WHERE NOT first_response_met) AS fr_breached,
                   count(*) FILTER (WHERE resolution_met) AS res_met,
                   count(*) FILTER (WHERE NOT resolution_met) AS res_breached,
                   count(*) FILTER (WHERE resolved_at IS NULL) AS open_at_cutoff
            FROM incident_sla WHERE month = ? GROUP BY customer_id
        ), backlog AS (  -- sla-semantics.md section 4, "Carried over": open at the cut-off
            SELECT customer_id, count(*) AS carried_open,
                   count(*) FILTER (WHERE first_response_met = false OR resolution_met = false) AS carried_breached
            FROM incident_sla WHERE month < ? AND resolved_at IS NULL GROUP BY customer_id
        )
        SELECT m.account_manager, m.customer_id, m.customer_name, m.tier,
               coalesce(f.incidents, 0), coalesce(f.over_quota, 0), coalesce(f.fr_met, 0), coalesce(f.fr_breached, 0),
               coalesce(f.res_met, 0), coalesce(f.res_breached, 0), coalesce(f.open_at_cutoff, 0),
               coalesce(b.carried_open, 0), coalesce(b.carried_breached, 0)
        FROM managed m LEFT JOIN figures f USING (customer_id) LEFT JOIN backlog b USING (customer_id)
        ORDER BY m.account_manager, m.customer_id
        """,
        [last, first, month, month],
    ).fetchall()
    by_manager: dict[str, list[CustomerSummary]] = {}
    missing = []
    for manager, cid, name, tier, *numbers in rows:
        report = customer_report_path(Path(out_dir), month, cid)
        if report is None:
            missing.append(cid)
        *figures, carried_open, carried_breached = numbers
        by_manager.setdefault(manager.strip(), []).append(
            CustomerSummary(cid, name, tier, *figures, report, carried_open, carried_breached))
    # the customers that need a conversation first (most breaches, backlog, over quota), then the rest
    deliveries = [Delivery(m, month, tuple(sorted(cs, key=lambda c: (not c.needs_conversation, c.urgency))))
                  for m, cs in by_manager.items() if any(c.report for c in cs)]
    return deliveries, missing


def message_id(delivery: Delivery, mail_from: str, attempt_key: str = "") -> str:
    """Stable per (month, recipient, files): a resend of the same content keeps its identity."""
    digest = hashlib.sha256("|".join([delivery.month, delivery.recipient, attempt_key,
                                      *[p.name for p in delivery.attachments]]).encode()).hexdigest()[:24]
    domain = mail_from.rsplit("@", 1)[-1] or "localhost"
    return f"<sla-{delivery.month}-{digest}@{domain}>"


def build_message(delivery: Delivery, mail_from: str, msg_id: str, now: dt.datetime) -> EmailMessage:
    month_name = dt.date.fromisoformat(delivery.month + "-01").strftime("%B %Y")
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = delivery.recipient
    msg["Subject"] = f"SLA compliance reports for {month_name}: {len(delivery.attachments)} customer(s)"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = msg_id
    lines = ["Hello,", "", f"attached are the SLA compliance reports for {month_name} of your customers, "
             "ready to forward.", ""]
    sent = [c for c in delivery.customers if c.report is not None]
    talk = [c for c in sent if c.needs_conversation]
    rest = [c for c in sent if not c.needs_conversation]
    for heading, group in (("Customers that need a conversation (most urgent first):", talk),
                           ("No breaches, backlog or quota overrun:", rest)):
        if not group:
            continue
        lines += [heading, ""]
        for c in group:
            tier = TIER_NAMES.get(c.tier, c.tier) if c.tier else "no contract"
            lines.append(f"- {c.customer_name} ({c.customer_id}, {tier}): {c.incidents} incident(s); "
                         f"first response {c.rate(c.fr_met, c.fr_breached)}, "
                         f"resolution {c.rate(c.res_met, c.res_breached)}")
            if c.talking_points:
                lines.append(f"  Needs a conversation: {', '.join(c.talking_points)}.")
        lines.append("")
    lines += ["Rates are shown from 5 rated incidents; below that, counts (\"1 of 1 met\").",
              "How the figures are measured is explained on the last page of each report.", ""]
    msg.set_content("\n".join(lines))
    for path in delivery.attachments:
        msg.add_attachment(path.read_bytes(), maintype="application", subtype="pdf", filename=path.name)
    return msg


def _ensure_log(con) -> None:
    con.execute(
        """CREATE TABLE IF NOT EXISTS delivery_log (month VARCHAR, recipient VARCHAR, files VARCHAR,
           message_id VARCHAR, status VARCHAR, error VARCHAR, logged_at TIMESTAMPTZ)"""
    )


def _log(con, d: Delivery, msg_id: str, status: str, error: str | None = None) -> None:
    con.execute("INSERT INTO delivery_log VALUES (?, ?, ?, ?, ?, ?, now())",
                [d.month, d.recipient, ", ".join(p.name for p in d.attachments), msg_id, status, error])


def _send(settings: SmtpSettings, msg: EmailMessage) -> None:
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(msg)


def deliver(con, out_dir: str | Path, month: str, smtp: SmtpSettings | None, *, dry_run: bool = False,
            resend: bool = False, now: dt.datetime | None = None) -> DeliveryResult:
    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    deliveries, missing = plan_deliveries(con, out_dir, month)
    result = DeliveryResult(missing_reports=missing)
    mail_from = smtp.mail_from if smtp else "sla-reports@localhost"
    if dry_run:
        outbox = Path(out_dir) / month / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        for d in deliveries:
            msg = build_message(d, mail_from, message_id(d, mail_from), now)
            path = outbox / f"{d.recipient.replace('/', '_')}.eml"
            write_bytes_atomic(bytes(msg), path)
            result.written.append(path)
        return result
    if smtp is None:
        raise ValueError("no SMTP server configured: set SLA_SMTP_HOST (or use --dry-run)")
    _ensure_log(con)
    for d in deliveries:
        already = scalar(con, "SELECT count(*) FROM delivery_log WHERE month = ? AND recipient = ? AND status = 'sent'",
                         [month, d.recipient])
        if already and not resend:
            result.skipped.append(d.recipient)
            continue
        attempt = f"resend-{now.isoformat()}" if (already and resend) else ""
        msg_id = message_id(d, mail_from, attempt)
        _log(con, d, msg_id, "sending")
        try:
            _send(smtp, build_message(d, mail_from, msg_id, now))
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if smtp.password:
                error = error.replace(smtp.password, "***")
            _log(con, d, msg_id, "failed", error)
            result.failed[d.recipient] = error
            continue
        _log(con, d, msg_id, "sent")
        # what the customers read now: a later run that changes it is a restatement (section 6)
        keep_delivered(con, month, [c.customer_id for c in d.customers if c.report is not None], d.recipient, now)
        result.sent.append(d.recipient)
    return result


def record_as_delivered(con, month: str, delivered_at: dt.datetime) -> int:
    """Keep a month's figures as `sla deliver` does when it sends them, without sending anything:
    per account manager, the customers with a contract in force in the month. `sla demo` uses it
    for its earlier delivery; returns the customers recorded."""
    first, last = month_bounds(month)
    rows = con.execute(
        """SELECT account_manager, customer_id FROM (
               SELECT DISTINCT ON (customer_id) customer_id, account_manager FROM contracts
               WHERE valid_from <= ? AND coalesce(valid_to, DATE '9999-12-31') >= ?
                 AND nullif(trim(account_manager), '') IS NOT NULL
               ORDER BY customer_id, valid_from DESC) ORDER BY 1, 2""", [last, first]).fetchall()
    by_manager: dict[str, list[str]] = {}
    for manager, cid in rows:
        by_manager.setdefault(manager, []).append(cid)
    for manager, customers in by_manager.items():
        keep_delivered(con, month, customers, manager, delivered_at)
    return sum(len(c) for c in by_manager.values())
