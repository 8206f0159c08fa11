"""Tests of the seeded demo-data generator (connectors/demo_export.py)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pandas as pd
import pytest

from connectors.demo_export import HEADERS, LATE_EXCLUSIONS, _gold_owed, earlier_delivery, write_demo_export

BERLIN = ZoneInfo("Europe/Berlin")
AS_OF = dt.datetime(2026, 3, 6, 15, 30, tzinfo=dt.timezone.utc)
FILES = tuple(HEADERS)
TS_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$"
BAD_TICKETS = {"BAD-NAIVE-TS", "BAD-SEV-5", "BAD-DUPLICATE"}


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False, encoding="utf-8")


def _digest(folder: Path) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "export"
    messages: list[str] = []
    counts = write_demo_export(out, as_of=AS_OF, progress=messages.append)
    assert messages, "progress is called"
    for name in FILES:
        assert counts[name] == len(_read(out, name)), name
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_demo_export(out, customers=60, months=12, seed=3, as_of=AS_OF, bad_rows=False)
    return out


@pytest.fixture(scope="module")
def frames(demo):
    tickets = _read(demo, "tickets.csv")
    events = _read(demo, "ticket_events.csv")
    contracts = _read(demo, "contracts.csv")
    invoices = _read(demo, "invoices.csv")
    return tickets, events, contracts, invoices


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, format="ISO8601", utc=True)


# ----------------------------------------------------------------------------- format
def test_headers_exactly_as_data_contract(demo):
    expected = {
        "tickets.csv": "ticket_id,customer_id,subject,severity,created_at,channel",
        "ticket_events.csv": "ticket_id,occurred_at,kind,actor,value",
        "contracts.csv": "customer_id,customer_name,tier,valid_from,valid_to,account_manager,terms,account_manager_name",
        "invoices.csv": "invoice_id,customer_id,issued_on,period_start,period_end,amount_eur",
    }
    for name, header in expected.items():
        first = (demo / name).read_bytes().split(b"\n", 1)[0].decode("utf-8")
        assert first == header, name


def test_csv_is_well_formed_and_escaped(demo):
    for name in FILES:
        with open(demo / name, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert all(len(r) == len(HEADERS[name]) for r in rows), name
    contracts = _read(demo, "contracts.csv")
    names = set(contracts["customer_name"])
    assert '<b>Acme</b> & "Co"' in names
    assert any("ü" in n or "ö" in n or "ä" in n for n in names)
    assert any("," in n for n in names)
    subjects = _read(demo, "tickets.csv")["subject"]
    assert subjects.str.contains("\n").any() and subjects.str.contains('"').any()
    assert subjects.str.contains(",").any() and subjects.str.contains("<").any()


def test_deterministic(tmp_path, demo):
    again = tmp_path / "again"
    write_demo_export(again, as_of=AS_OF)
    assert _digest(again) == _digest(demo)
    other = tmp_path / "other"
    write_demo_export(other, as_of=AS_OF, seed=8)
    assert _digest(other)["tickets.csv"] != _digest(demo)["tickets.csv"]


# ----------------------------------------------------------------------------- timestamps
def test_timestamps_have_offsets_and_are_not_after_as_of(frames):
    tickets, events, _, _ = frames
    good_t = tickets[~tickets.ticket_id.isin(BAD_TICKETS)]
    for col in (good_t.created_at, events.occurred_at):
        assert col.str.match(TS_RE).all()
        assert (_utc(col) <= pd.Timestamp(AS_OF)).all()
    # offsets are the Berlin ones for that instant
    sample = good_t.created_at.iloc[::97]
    for s in sample:
        t = dt.datetime.fromisoformat(s)
        assert t.utcoffset() == t.astimezone(BERLIN).utcoffset(), s
    # the span: 24 full local months before March 2026, plus March up to as_of
    created = _utc(good_t.created_at).dt.tz_convert(BERLIN)
    assert created.min() >= pd.Timestamp("2024-03-01", tz=BERLIN)
    assert created.min() < pd.Timestamp("2024-03-08", tz=BERLIN)


def test_events_after_creation_and_ordered(frames):
    tickets, events, _, _ = frames
    good = tickets[~tickets.ticket_id.isin(BAD_TICKETS)].copy()
    good["created"] = _utc(good.created_at)
    ev = events.merge(good[["ticket_id", "created"]], on="ticket_id")
    ev = ev[~ev.value.isin(["escalated", "5"])]  # the deliberate bad events (appended at the end)
    ev["t"] = _utc(ev.occurred_at)
    assert (ev.t >= ev.created).all()
    # file order within a ticket is chronological
    assert (ev.groupby("ticket_id", sort=False).t.diff().dropna() >= pd.Timedelta(0)).all()
    # the first event is the 'new' status at creation
    first = ev.groupby("ticket_id", sort=False).head(1)
    assert (first.value == "new").all() and (first.t == first.created).all()


# ----------------------------------------------------------------------------- contracts
def _contract_table(contracts: pd.DataFrame) -> pd.DataFrame:
    c = contracts.copy()
    c["vf"] = pd.to_datetime(c.valid_from)
    c["vt"] = pd.to_datetime(c.valid_to.replace("", "2999-12-31"))
    return c


def test_contracts_consecutive_and_cover_every_ticket(frames):
    tickets, _, contracts, _ = frames
    c = _contract_table(contracts)
    c = c[c.vt >= c.vf]  # the deliberate bad row is dropped here
    assert len(c) == len(contracts) - 1
    for _, g in c.sort_values(["customer_id", "vf"]).groupby("customer_id"):
        assert (g.vf.iloc[1:].values == (g.vt.iloc[:-1] + pd.Timedelta(days=1)).values).all()
        assert g.valid_to.iloc[-1] == ""
        assert (g.tier.iloc[1:].values != g.tier.iloc[:-1].values).all()
    assert c.groupby("customer_id").size().gt(1).sum() >= 30  # upgrades/downgrades exist
    good = tickets[~tickets.ticket_id.isin(BAD_TICKETS)].copy()
    good["day"] = _utc(good.created_at).dt.tz_convert(BERLIN).dt.tz_localize(None).dt.normalize()
    m = good.merge(c[["customer_id", "vf", "vt", "tier"]], on="customer_id")
    m = m[(m.vf <= m.day) & (m.day <= m.vt)]
    assert m.ticket_id.is_unique and set(m.ticket_id) == set(good.ticket_id)
    # the bad contract belongs to a customer without tickets
    bad = _contract_table(contracts).query("vt < vf")
    assert len(bad) == 1 and not tickets.customer_id.isin(bad.customer_id).any()


def test_tier_and_severity_mix(frames):
    tickets, _, contracts, _ = frames
    first = contracts.drop_duplicates("customer_id").iloc[:-1]  # without the bad row
    share = first.tier.value_counts(normalize=True)
    assert 0.40 < share["professional"] < 0.60
    assert 0.25 < share["enterprise"] < 0.45
    assert 0.08 < share["gold"] < 0.22
    assert 8_000 < len(tickets) < 25_000
    sev = tickets.severity.value_counts(normalize=True)
    for s, p in {"1": 0.05, "2": 0.20, "3": 0.45, "4": 0.30}.items():
        assert abs(sev[s] - p) < 0.03, s
    assert set(tickets.channel) == {"email", "chat", "phone", "video", "web"}
    assert contracts.account_manager.str.contains("@").all()


def test_some_months_over_quota(frames):
    tickets, _, contracts, _ = frames
    good = tickets[~tickets.ticket_id.isin(BAD_TICKETS)].copy()
    good["month"] = _utc(good.created_at).dt.tz_convert(BERLIN).dt.strftime("%Y-%m")
    per = good.groupby(["customer_id", "month"]).size()
    assert (per > 4).any() and (per == 1).any()


# ----------------------------------------------------------------------------- lifecycle
def test_lifecycle_features_present(frames):
    tickets, events, _, _ = frames
    st = events[events.kind == "status"]
    assert set(st.value) >= {"new", "open", "pending", "on_hold", "solved", "closed"}
    assert set(events[events.kind == "reply"].actor) == {"agent", "customer", "system"}
    assert (events[events.kind == "reply"].value == "").all()
    # reopened: solved twice
    solved_twice = st[st.value == "solved"].groupby("ticket_id").size()
    n = len(tickets)
    assert 0.01 * n < (solved_twice >= 2).sum() < 0.1 * n
    # severity changes (both directions), values 1-4
    sev = events[events.kind == "severity"]
    assert 0.01 * n < sev.ticket_id.nunique() < 0.06 * n
    merged = sev.merge(tickets[["ticket_id", "severity"]], on="ticket_id")
    assert (merged.value < merged.severity).any() and (merged.value > merged.severity).any()
    # resolved before any agent reply
    agent_replied = set(events[(events.kind == "reply") & (events.actor == "agent")].ticket_id)
    resolved = set(st[st.value == "solved"].ticket_id)
    assert len(resolved - agent_replied) > 0.01 * n
    # auto replies by the system exist
    assert ((events.kind == "reply") & (events.actor == "system")).sum() > 0.05 * n


def test_open_tickets_and_off_hours(frames):
    tickets, events, _, _ = frames
    good = tickets[~tickets.ticket_id.isin(BAD_TICKETS)].copy()
    local = _utc(good.created_at).dt.tz_convert(BERLIN)
    st = events[events.kind == "status"]
    last = st.groupby("ticket_id").value.last()
    open_ids = set(good.ticket_id) - set(last[last.isin(["solved", "closed"])].index)
    assert open_ids
    created_open = local[good.ticket_id.isin(open_ids)]
    assert (created_open > pd.Timestamp(AS_OF) - pd.Timedelta(days=3)).any()
    assert (created_open < pd.Timestamp(AS_OF) - pd.Timedelta(days=60)).any()  # a few old ones too
    de = holidays.country_holidays("DE", years=range(2024, 2027))
    weekend = local.dt.day_of_week >= 5
    night = (local.dt.hour < 9) | (local.dt.hour >= 17)
    holiday = local.dt.date.isin(set(de))
    in_hours = ~weekend & ~night & ~holiday
    assert 0.70 < in_hours.mean() < 0.90
    assert weekend.sum() > 0 and night.sum() > 0 and holiday.sum() > 0
    dst_days = {dt.date(2024, 3, 31), dt.date(2024, 10, 27), dt.date(2025, 3, 30), dt.date(2025, 10, 26)}
    assert local.dt.date.isin(dst_days).sum() >= 8


# ----------------------------------------------------------------------------- invoices
def test_invoices(frames, demo):
    from sla.policy import load_policy

    policy = load_policy(demo / "sla-policy.yaml")  # the demo's: a second version and term sets
    tickets, _, contracts, invoices = frames
    assert invoices.invoice_id.is_unique
    assert invoices.invoice_id.str.match(r"^INV-\d{4}-\d{4}$").all()
    assert invoices.amount_eur.str.match(r"^\d+\.\d{2}$").all()
    assert (pd.to_datetime(invoices.issued_on) <= pd.Timestamp("2026-03-06")).all()
    c = _contract_table(contracts)
    gold = c[c.tier == "gold"]
    statuses = []
    for inv in invoices.itertuples():
        ps, pe = pd.Timestamp(inv.period_start), pd.Timestamp(inv.period_end)
        g = gold[(gold.customer_id == inv.customer_id) & (gold.vf <= pe) & (gold.vt >= ps)]
        if g.empty:
            statuses.append("not_gold")
            continue
        assert len(g) == 1 and g.vf.iloc[0] <= ps and pe <= g.vt.iloc[0]
        terms = g.terms.iloc[0] or None

        def fee_of(day, terms=terms):
            return policy.version_on(day).tier_figures("gold", terms)[1]
        owed = _gold_owed(ps.date(), pe.date(), fee_of)
        amount = Decimal(inv.amount_eur)
        statuses.append("ok" if amount == owed else "under" if amount < owed else "over")
    assert statuses.count("not_gold") == 1 and statuses.count("under") == 1 and statuses.count("over") == 1
    assert statuses.count("ok") > 50
    # exactly one overlapping pair
    inv = invoices.assign(ps=pd.to_datetime(invoices.period_start), pe=pd.to_datetime(invoices.period_end))
    pairs = inv.merge(inv, on="customer_id")
    overlap = pairs[(pairs.invoice_id_x < pairs.invoice_id_y) & (pairs.ps_x <= pairs.pe_y) & (pairs.ps_y <= pairs.pe_x)]
    assert len(overlap) == 1
    # exactly one run of Gold days (up to the cut-off) that no invoice covers
    cutoff = pd.Timestamp("2026-03-06")
    covered = {(r.customer_id, d) for r in inv.itertuples() for d in pd.date_range(r.ps, r.pe)}
    uncovered = sorted(
        (r.customer_id, d)
        for r in gold.itertuples()
        for d in pd.date_range(r.vf, min(r.vt, cutoff))
        if (r.customer_id, d) not in covered
    )
    runs = sum(
        1
        for i, (cid, d) in enumerate(uncovered)
        if i == 0 or uncovered[i - 1] != (cid, d - pd.Timedelta(days=1))
    )
    assert runs == 1 and len(uncovered) >= 28


def test_gold_owed_full_year():
    assert _gold_owed(dt.date(2025, 1, 1), dt.date(2025, 12, 31)) == Decimal("17988.00")
    assert _gold_owed(dt.date(2025, 2, 15), dt.date(2025, 2, 28)) == Decimal("749.50")


# ----------------------------------------------------------------------------- bad rows
def test_bad_rows_present(frames):
    tickets, events, contracts, _ = frames
    assert (tickets.ticket_id == "BAD-DUPLICATE").sum() == 2
    assert not tickets[tickets.ticket_id == "BAD-NAIVE-TS"].created_at.str.match(TS_RE).any()
    assert (tickets.severity == "5").sum() == 1
    known = set(tickets.ticket_id)
    assert set(events.ticket_id) - known == {"T99999999"}
    st = events[events.kind == "status"]
    assert set(st.value) - {"new", "open", "pending", "on_hold", "solved", "closed"} == {"escalated"}
    assert set(events[events.kind == "severity"].value) == {"1", "2", "3", "4", "5"}
    bad_total = (~tickets.created_at.str.match(TS_RE)).sum() + (tickets.severity == "5").sum() + 2 + 4 + 1
    assert 5 <= bad_total <= 12


def test_no_bad_rows_when_disabled(clean):
    tickets = _read(clean, "tickets.csv")
    events = _read(clean, "ticket_events.csv")
    contracts = _read(clean, "contracts.csv")
    assert tickets.ticket_id.is_unique
    assert tickets.created_at.str.match(TS_RE).all() and events.occurred_at.str.match(TS_RE).all()
    assert set(tickets.severity) <= {"1", "2", "3", "4"}
    assert set(events.ticket_id) <= set(tickets.ticket_id)
    assert set(events.kind) <= {"reply", "status", "severity"}
    ok_values = {"reply": {""}, "severity": {"1", "2", "3", "4"},
                 "status": {"new", "open", "pending", "on_hold", "solved", "closed"}}
    for kind, allowed in ok_values.items():
        assert set(events[events.kind == kind].value) <= allowed
    assert set(events[events.kind == "reply"].actor) <= {"agent", "customer", "system"}
    c = _contract_table(contracts)
    assert (c.vt >= c.vf).all()


def test_incidents_sets_volume(tmp_path):
    counts = write_demo_export(tmp_path, customers=50, months=6, as_of=AS_OF, incidents=200_000, bad_rows=False)
    assert counts["tickets.csv"] == 200_000
    assert 4 * 200_000 < counts["ticket_events.csv"] < 9 * 200_000
    events = pd.read_csv(tmp_path / "ticket_events.csv", usecols=["ticket_id"], dtype=str)
    assert len(events) == counts["ticket_events.csv"]


def test_small_and_edge_arguments(tmp_path):
    counts = write_demo_export(tmp_path / "a", customers=3, months=0, as_of=AS_OF)
    assert counts["contracts.csv"] >= 4
    counts = write_demo_export(tmp_path / "b", customers=5, months=2, as_of=AS_OF, incidents=0)
    assert counts["tickets.csv"] == 4  # only the deliberate bad rows
    with pytest.raises(ValueError):
        write_demo_export(tmp_path / "c", as_of=dt.datetime(2026, 1, 1))


def test_demo_carries_versions_terms_and_exclusions(demo):
    """Issue 17: the demo exercises policy versions, customer terms and exclusions (bad rows too)."""
    from sla.policy import load_policy

    policy = load_policy(demo / "sla-policy.yaml")
    assert len(policy.versions) == 2 and policy.versions[1].tiers["gold"].monthly_price == Decimal("1599.00")
    contracts = _read(demo, "contracts.csv")
    assert {"gold-6", "enterprise-fast", "platinum"} <= set(contracts.terms)
    exclusions = _read(demo, "exclusions.csv")
    assert set(exclusions.metric) == {"first_response", "resolution", "both", "speed"}
    assert (exclusions.reason == "").sum() == 1 and "T99999999" in set(exclusions.ticket_id)


def test_exclusions_approved_after_the_earlier_delivery_restate_its_month(demo, frames):
    """Issue 17: `sla demo` records the month before the reporting month as delivered three days
    into the reporting month; a few Gold/Enterprise severity 1-2 tickets of that month get a
    resolution exclusion approved a week later, before the cut-off."""
    month, delivered = earlier_delivery(AS_OF, BERLIN)
    assert (month, delivered) == ("2026-01", dt.datetime(2026, 2, 4, tzinfo=BERLIN))
    tickets, _, contracts, _ = frames
    late = _read(demo, "exclusions.csv")
    late = late[late["reason"].str.contains("confirmed after the 2026-01 report")]
    assert 1 <= len(late) <= LATE_EXCLUSIONS
    assert set(late["metric"]) == {"resolution"}
    approved = _utc(late["approved_at"])
    assert (approved > delivered).all() and (approved < AS_OF).all()
    picked = tickets.set_index("ticket_id").loc[late["ticket_id"]]
    assert set(picked["severity"]) <= {"1", "2"}
    assert (_utc(picked["created_at"]).dt.tz_convert(BERLIN).dt.strftime("%Y-%m") == month).all()
    for ticket, row in picked.iterrows():  # the contract in force at creation has resolution targets
        day = _utc(pd.Series([row["created_at"]])).dt.tz_convert(BERLIN).dt.strftime("%Y-%m-%d")[0]
        c = contracts[(contracts["customer_id"] == row["customer_id"]) & (contracts["valid_from"] <= day)
                      & ((contracts["valid_to"] == "") | (contracts["valid_to"] >= day))]
        assert set(c["tier"]) and set(c["tier"]) <= {"gold", "enterprise"}, ticket
    assert picked["customer_id"].is_unique
