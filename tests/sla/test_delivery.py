"""Delivery against a real SMTP server (aiosmtpd on 127.0.0.1): recipients, attachments,
idempotency, retry after a refusal, dry run, and no secret in the log."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from aiosmtpd.controller import Controller

from sla.delivery import SmtpSettings, deliver
from sla.metrics import compute_monthly_slice
from tests.helpers import run_domain, write_export

AS_OF = dt.datetime(2026, 4, 2, 12, tzinfo=dt.timezone.utc)
MONTH = "2026-03"


class Inbox:
    def __init__(self):
        self.messages = []
        self.refuse = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            self.refuse.discard(address)  # refuse once, accept next time
            return "550 mailbox temporarily refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 Message accepted"


@pytest.fixture()
def smtp():
    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd's readiness probe cannot use port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpSettings(host="127.0.0.1", port=port, mail_from="reports@vendor.example")
    finally:
        controller.stop()


@pytest.fixture()
def warehouse(tmp_path):
    folder = write_export(
        tmp_path / "export",
        [("T1", "C1", "a", 1, "2026-03-02T10:00:00+01:00", "web"),
         ("T2", "C1", "b", 1, "2026-03-03T10:00:00+01:00", "web"),
         ("T3", "C2", "c", 2, "2026-03-04T10:00:00+01:00", "web"),
         ("T4", "C3", "d", 3, "2026-03-05T10:00:00+01:00", "web")],
        [("T1", "2026-03-02T11:00:00+01:00", "reply", "agent", "")],
        [("C1", "Acme", "professional", "2025-01-01", "", "anna@vendor.example"),
         ("C2", "Beta", "gold", "2025-01-01", "", "anna@vendor.example"),
         ("C3", "Gamma", "enterprise", "2025-01-01", "", "bert@vendor.example"),
         ("C4", "Delta", "enterprise", "2025-01-01", "2026-02-28", "carl@vendor.example")],
    )
    con, _ = run_domain(folder, AS_OF)
    compute_monthly_slice(con, MONTH)
    out = tmp_path / "out"
    reports = out / MONTH / "customers"
    reports.mkdir(parents=True)
    for cid, slug in (("C1", "acme"), ("C2", "beta"), ("C3", "gamma")):
        (reports / f"{cid}-{slug}.pdf").write_bytes(b"%PDF-1.7 report of " + cid.encode())
    return con, out


def attachments(msg) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in msg.iter_attachments()}


def test_each_manager_gets_exactly_their_customers(smtp, warehouse):
    inbox, settings = smtp
    con, out = warehouse
    result = deliver(con, out, MONTH, settings)
    assert sorted(result.sent) == ["anna@vendor.example", "bert@vendor.example"]
    got = {tuple(rcpts): msg for rcpts, msg in inbox.messages}
    anna = got[("anna@vendor.example",)]
    assert attachments(anna) == {"C1-acme.pdf": b"%PDF-1.7 report of C1", "C2-beta.pdf": b"%PDF-1.7 report of C2"}
    assert attachments(got[("bert@vendor.example",)]) == {"C3-gamma.pdf": b"%PDF-1.7 report of C3"}
    body = anna.get_body(("plain",)).get_content()
    assert "Acme (C1, Professional): 2 incident(s)" in body
    # breaches come before a quota overrun (Beta's only incident has had no reply for a month;
    # Acme is over its quota); counts, not rates, below 5 rated incidents
    assert "Beta (C2, Gold): 1 incident(s); first response 0 of 1 met" in body
    assert body.index("Beta (C2") < body.index("Acme (C1")
    assert "n/a" not in body and "first response none rated yet" in body
    assert "1 incident(s) over the included quota" in body  # professional: 1 included
    assert "Gamma" not in body  # another manager's customer
    assert "carl@vendor.example" not in result.sent  # contract ended before the month


def test_rerun_sends_nothing_unless_resend(smtp, warehouse):
    inbox, settings = smtp
    con, out = warehouse
    deliver(con, out, MONTH, settings)
    second = deliver(con, out, MONTH, settings)
    assert second.sent == [] and sorted(second.skipped) == ["anna@vendor.example", "bert@vendor.example"]
    assert len(inbox.messages) == 2
    third = deliver(con, out, MONTH, settings, resend=True)
    assert len(third.sent) == 2 and len(inbox.messages) == 4
    log = con.execute("SELECT status, count(*) FROM delivery_log GROUP BY 1 ORDER BY 1").fetchall()
    assert log == [("sending", 4), ("sent", 4)]


def test_refused_message_is_reported_and_retried_next_run(smtp, warehouse):
    inbox, settings = smtp
    con, out = warehouse
    inbox.refuse.add("bert@vendor.example")
    first = deliver(con, out, MONTH, settings)
    assert first.sent == ["anna@vendor.example"] and "bert@vendor.example" in first.failed
    assert "refused" in first.failed["bert@vendor.example"]
    second = deliver(con, out, MONTH, settings)
    assert second.sent == ["bert@vendor.example"] and second.skipped == ["anna@vendor.example"]
    assert [r for r, _ in inbox.messages] == [["anna@vendor.example"], ["bert@vendor.example"]]


def test_dry_run_writes_eml_files_and_sends_nothing(smtp, warehouse):
    inbox, settings = smtp
    con, out = warehouse
    result = deliver(con, out, MONTH, None, dry_run=True)
    names = sorted(p.name for p in (out / MONTH / "outbox").iterdir())
    assert names == ["anna@vendor.example.eml", "bert@vendor.example.eml"]
    msg = email.message_from_bytes((out / MONTH / "outbox" / "bert@vendor.example.eml").read_bytes(),
                                   policy=email.policy.default)
    assert set(attachments(msg)) == {"C3-gamma.pdf"}
    assert inbox.messages == [] and len(result.written) == 2


def test_password_never_reaches_the_log(warehouse):
    con, out = warehouse
    settings = SmtpSettings(host="127.0.0.1", port=1, user="u", password="S3NTINEL-pw", mail_from="r@v.example")
    result = deliver(con, out, MONTH, settings)
    assert result.failed  # nothing listens on port 1
    dump = str(con.execute("SELECT * FROM delivery_log").fetchall()) + result.text() + repr(settings)
    assert "S3NTINEL-pw" not in dump


def test_cli_dry_run(warehouse, tmp_path):
    import subprocess
    import sys

    con, out = warehouse
    db = tmp_path / "wh.duckdb"
    con.execute(f"ATTACH '{db}' AS disk")
    con.execute("COPY FROM DATABASE memory TO disk")
    con.execute("DETACH disk")
    r = subprocess.run([sys.executable, "-m", "pipelines.cli", "deliver", "--db", str(db), "--out", str(out), "--month", MONTH,
                        "--dry-run"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / MONTH / "outbox" / "anna@vendor.example.eml").exists()


def test_kill_9_during_delivery_then_rerun_delivers_each_message_once_by_message_id(smtp, warehouse, tmp_path):
    """A crash between the server's acceptance and the log can resend, but with the same Message-ID."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    inbox, settings = smtp
    con, out = warehouse
    db = tmp_path / "wh.duckdb"
    con.execute(f"ATTACH '{db}' AS disk")
    con.execute("COPY FROM DATABASE memory TO disk")
    con.execute("DETACH disk")
    script = textwrap.dedent(f"""
        import smtplib, sys, time
        import sla.delivery as d
        from sla.warehouse import connect
        real_send = d._send
        def slow_send(settings, msg):
            real_send(settings, msg)
            print("sent", msg["To"], flush=True)
            time.sleep(30)  # killed here: accepted by the server, not yet logged as sent
        d._send = slow_send
        settings = d.SmtpSettings(host="127.0.0.1", port={settings.port}, mail_from="reports@vendor.example")
        with connect({str(db)!r}) as con:
            d.deliver(con, {str(out)!r}, "{MONTH}", settings)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("sent ")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rerun = subprocess.run([sys.executable, "-m", "pipelines.cli", "deliver", "--db", str(db), "--out", str(out),
                            "--month", MONTH], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "SLA_SMTP_HOST": "127.0.0.1", "SLA_SMTP_PORT": str(settings.port),
                                "SLA_MAIL_FROM": "reports@vendor.example"})
    assert rerun.returncode == 0, rerun.stderr
    received = [(tuple(r), m["Message-ID"]) for r, m in inbox.messages]
    assert {r for r, _ in received} == {("anna@vendor.example",), ("bert@vendor.example",)}
    # the message accepted before the kill may arrive again, but as the same message (same Message-ID)
    assert len({mid for _, mid in received}) == 2
    final = duckdb_status(db)
    assert final == {"anna@vendor.example": "sent", "bert@vendor.example": "sent"}


def duckdb_status(db) -> dict[str, str]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT recipient, status FROM delivery_log WHERE status = 'sent'").fetchall()
    return dict(rows)


def test_sent_figures_are_kept_for_restatements(smtp, warehouse):
    """What a delivery sent is kept per customer (sla-semantics.md section 6, restatements)."""
    inbox, settings = smtp
    con, out = warehouse
    deliver(con, out, MONTH, settings)
    kept = dict(((c, f), v) for c, f, v in con.execute(
        "SELECT customer_id, figure, value FROM delivered_figures WHERE month = ?", [MONTH]).fetchall())
    assert {c for c, _ in kept} == {"C1", "C2", "C3"}
    # C1 (professional, quota 1): T1 and T2, no targets for severity 1, one over quota
    assert (kept[("C1", "incidents")], kept[("C1", "over_quota")], kept[("C1", "first_response_met")]) == (2, 1, 0)
    assert con.execute("SELECT count(*) FROM restatements").fetchone()[0] == 0
