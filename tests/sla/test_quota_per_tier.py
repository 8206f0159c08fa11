"""Quota per tier (sla-semantics.md section 4): a customer's incidents of a month that have a tier
are ranked per tier; incidents without a contract use no allowance and take no rank."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sla.policy import load_policy
from tests.helpers import incident_rows, run_domain, write_export
from tests.reference import Contract, Ticket, reference_incident_sla

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = load_policy()
AS_OF = dt.datetime(2026, 6, 2, tzinfo=BERLIN)

CONTRACTS = [
    # M: Professional until Fri 8 May (quota 1), Gold from Sat 9 May (quota 4)
    ("M", "Mover GmbH", "professional", "2025-01-01", "2026-05-08", "am@vendor.example"),
    ("M", "Mover GmbH", "gold", "2026-05-09", "", "am@vendor.example"),
    # N: no contract before Sun 10 May, Gold from then on
    ("N", "Newcomer AG", "gold", "2026-05-10", "", "am@vendor.example"),
]
TICKETS = [
    ("P1", "M", "pro 1", 3, "2026-05-04T09:00:00+02:00", "web"),
    ("P2", "M", "pro 2", 3, "2026-05-05T09:00:00+02:00", "web"),
    ("G1", "M", "gold 1", 3, "2026-05-11T09:00:00+02:00", "web"),
    ("G2", "M", "gold 2", 3, "2026-05-12T09:00:00+02:00", "web"),
    ("G3", "M", "gold 3", 3, "2026-05-13T09:00:00+02:00", "web"),
    ("N0", "N", "before the contract", 3, "2026-05-04T09:00:00+02:00", "web"),
    ("N1", "N", "gold 1", 3, "2026-05-11T09:00:00+02:00", "web"),
    ("N2", "N", "gold 2", 3, "2026-05-12T09:00:00+02:00", "web"),
    ("N3", "N", "gold 3", 3, "2026-05-13T09:00:00+02:00", "web"),
    ("N4", "N", "gold 4", 3, "2026-05-15T09:00:00+02:00", "web"),
    # June: a new month, a new allowance
    ("G4", "M", "june", 3, "2026-06-01T09:00:00+02:00", "web"),
]

# M, May: professional ranks P1 = 1, P2 = 2 (quota 1: P2 over); gold ranks G1..G3 = 1..3 (quota 4:
#   none over). 1 over quota. (One rank per month would make G1..G3 the 3rd..5th incident of the
#   month, putting G3 over gold's 4 as well.)
# N, May: N0 has no contract (over_quota NULL, no rank); gold ranks N1..N4 = 1..4 (quota 4: none
#   over). Ranked with N0, N4 would be 5th and wrongly over.
# M, June: G4 ranks 1 of its month: within quota.
EXPECTED = {"P1": (False, 1), "P2": (True, 2), "G1": (False, 1), "G2": (False, 2), "G3": (False, 3),
            "N0": (None, None), "N1": (False, 1), "N2": (False, 2), "N3": (False, 3), "N4": (False, 4),
            "G4": (False, 1)}


def test_quota_is_ranked_per_tier(tmp_path):
    con, counts = run_domain(write_export(tmp_path, TICKETS, (), CONTRACTS), AS_OF)
    assert sum(c.rejected for c in counts) == 0
    rows = incident_rows(con)
    assert {t: (r["over_quota"], r["quota_rank"]) for t, r in rows.items()} == EXPECTED
    # the independent reference agrees
    ref = reference_incident_sla(
        [Ticket(t[0], t[1], t[3], dt.datetime.fromisoformat(t[4])) for t in TICKETS], [],
        [Contract(c[0], c[2], dt.date.fromisoformat(c[3]), dt.date.fromisoformat(c[4]) if c[4] else None)
         for c in CONTRACTS], POLICY, AS_OF)
    assert {t: r["over_quota"] for t, r in ref.items()} == {t: e[0] for t, e in EXPECTED.items()}

    # monthly_quota: one allowance per tier, side by side; no contract: no quota, never over
    assert con.execute("SELECT month, customer_id, tier, incidents, quota, over_quota FROM monthly_quota "
                       "ORDER BY month, customer_id, tier NULLS FIRST").fetchall() == [
        ("2026-05", "M", "gold", 3, 4, 0),
        ("2026-05", "M", "professional", 2, 1, 1),
        ("2026-05", "N", None, 1, None, 0),
        ("2026-05", "N", "gold", 4, 4, 0),
        ("2026-06", "M", "gold", 1, 4, 0),
    ]
