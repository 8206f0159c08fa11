"""Business-time kernel benchmark: business seconds between instants and due instants.

Compares, on the same random inputs and the same business calendar (config/sla-policy.yaml:
Europe/Berlin, Mon-Fri 09:00-17:00, German nationwide holidays):

* duckdb      - our kernel: the `business_calendar` table + ASOF join, set-based, written the way
                `sla/sql/incident_sla.sql` does it (distinct instants -> ASOF clock -> equi-join back;
                due instant = ASOF on cumulative business seconds).
* duckdb_direct - the same formula with the ASOF joins applied to the input rows directly
                (no DISTINCT / join-back); shown for comparison with the pipeline's shape.
* duckdb_bucket - proposed: the same calendar rows, looked up with hash equi-joins on buckets
                (see `write_bucket_tables` and benchmarks/proposals/clock_buckets.diff).
* polars      - `join_asof` over the same calendar rows.
* pandas      - `pd.offsets.CustomBusinessHour` (+ `CustomBusinessDay`), per element, on a sample.
* businesstimedelta - `WorkDayRule` + `HolidayRule`, per pair, on a sample.

Every library's answers are compared with `sla.calendar.BusinessCalendar` (the Python API the
test-suite checks against a brute-force reference). Wrong answers are counted and classified.

Run:  python benchmarks/business_time_kernel.py            (1M and 10M, ~5 min on 2 quiet cores)
      python benchmarks/business_time_kernel.py --quick    (100k, smoke test)
Results: benchmarks/results/business_time_kernel.json (+ a Markdown table on stdout).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import math
import os
import time
import warnings
from collections import Counter

import _common  # noqa: F401  (puts the repo on sys.path)
import duckdb  # noqa: E402
import holidays as holidays_lib  # noqa: E402
import numpy as np
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa
from _common import fmt_s, machine, median, save_results, timed

from sla.calendar import BusinessCalendar, write_business_calendar  # noqa: E402
from sla.policy import load_policy  # noqa: E402

UTC = dt.timezone.utc
CAL_FIRST, CAL_LAST = dt.date(2022, 1, 1), dt.date(2028, 12, 31)
SPAN_FIRST, SPAN_LAST = dt.date(2023, 1, 1), dt.date(2026, 12, 31)  # where the inputs start
POLICY_TARGET_HOURS = np.array([8, 16, 24, 32, 56, 112])  # the policy's targets (3/7/14 business days = 24/56/112 h)
HOUR = 3600


# ----------------------------------------------------------------------------------- inputs
class Days:
    """Every local day of the input span: midnight, 09:00 and 17:00 as UTC epochs."""

    def __init__(self, policy):
        tz = policy.calendar.tz
        n = (SPAN_LAST - SPAN_FIRST).days + 40
        days = [SPAN_FIRST + dt.timedelta(days=i) for i in range(n)]

        def at(d, h):
            return int(dt.datetime.combine(d, dt.time(h), tzinfo=tz).timestamp())

        self.midnight = np.array([at(d, 0) for d in days] + [at(days[-1] + dt.timedelta(days=1), 0)], np.int64)
        self.open9 = np.array([at(d, 9) for d in days], np.int64)
        self.close17 = np.array([at(d, 17) for d in days], np.int64)
        length = np.diff(self.midnight)
        hol = holidays_lib.country_holidays(
            policy.calendar.holidays.country, subdiv=policy.calendar.holidays.subdivision,
            years=range(SPAN_FIRST.year, SPAN_LAST.year + 2),
        )
        dst = np.flatnonzero(length != 86_400)
        special = set()
        for i in dst:  # DST switch days and their neighbours (Friday before, Monday after)
            special.update(int(j) for j in (i - 2, i - 1, i, i + 1) if 0 <= j < n)
        special.update(i for i, d in enumerate(days) if d in hol)  # holidays
        special.update(i + 1 for i, d in enumerate(days) if d in hol and i + 1 < n)
        self.special = np.array(sorted(special), np.int64)
        self.n = n
        self.day_len = length


def make_inputs(n: int, seed: int, days: Days) -> dict[str, np.ndarray]:
    """Random intervals and (start, target) pairs, biased to the hard places.

    Starts: 55 % uniform, 20 % exactly at a local 09:00 or 17:00 (or one second either side),
    25 % anywhere on DST switch days, holidays and their neighbours. Interval lengths: short
    (exp, mean 8 h), long (exp, mean 5 days), ending exactly at a local 09:00/17:00, empty, or
    reversed. Targets: the policy's (8/16/24/32/56/112 business hours, 70 %) or 1-120 whole hours.
    """
    rng = np.random.default_rng(seed)

    def starts(k):
        kind = rng.choice(3, k, p=[0.55, 0.20, 0.25])
        uniform = rng.integers(days.midnight[0], days.midnight[days.n - 30], k)
        d = rng.integers(0, days.n - 30, k)
        edge = np.where(rng.integers(0, 2, k) == 1, days.close17[d], days.open9[d]) + rng.choice(
            [-1, 0, 0, 0, 0, 1], k)
        sd = days.special[rng.integers(0, len(days.special), k)]
        special = days.midnight[sd] + (rng.random(k) * days.day_len[sd]).astype(np.int64)
        return np.select([kind == 0, kind == 1], [uniform, edge], special)

    start = starts(n)
    dk = rng.choice(5, n, p=[0.35, 0.35, 0.15, 0.10, 0.05])
    short = (rng.exponential(8 * HOUR, n)).astype(np.int64)
    long = (rng.exponential(5 * 86_400, n)).astype(np.int64)
    sday = np.searchsorted(days.midnight, start, side="right") - 1
    eday = np.minimum(sday + rng.integers(0, 15, n), days.n - 1)
    snapped = np.where(rng.integers(0, 2, n) == 1, days.close17[eday], days.open9[eday])
    snapped = np.maximum(snapped, start)
    end = np.select([dk == 0, dk == 1, dk == 2, dk == 3], [start + short, start + long, snapped, start],
                    start - short)

    due_start = starts(n)
    hours = np.where(rng.random(n) < 0.7, POLICY_TARGET_HOURS[rng.integers(0, 6, n)], rng.integers(1, 121, n))
    return {"start": start, "end": end, "due_start": due_start, "target": hours.astype(np.int64) * HOUR}


def _ts(epochs: np.ndarray) -> pa.Array:
    return pa.array(epochs * 1_000_000, pa.timestamp("us", tz="UTC"))


# ----------------------------------------------------------------------------------- reference
def reference(cal: BusinessCalendar, inp: dict, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Business seconds and due epochs from the Python API (brute-force-tested) for rows idx."""
    fromts = dt.datetime.fromtimestamp
    s, e, ds, tg = (inp[k][idx].tolist() for k in ("start", "end", "due_start", "target"))
    dur = np.fromiter((cal.business_seconds(fromts(a, UTC), fromts(b, UTC)) for a, b in zip(s, e)), np.int64, len(s))
    due = np.fromiter((int(cal.due(fromts(a, UTC), t).timestamp()) for a, t in zip(ds, tg)), np.int64, len(s))
    return dur, due


# ----------------------------------------------------------------------------------- duckdb
DUCK_SETUP = """
CREATE OR REPLACE TABLE intervals AS SELECT * FROM iv_arrow;
CREATE OR REPLACE TABLE due_requests AS SELECT * FROM dq_arrow;
"""

# Same shape as sla/sql/incident_sla.sql: clock of every distinct instant via one ASOF join,
# then equi-joins back; due instant by ASOF on cumulative business seconds (strict >).
DUCK_DURATION = """
CREATE OR REPLACE TEMP TABLE _instants AS
SELECT DISTINCT epoch(x)::BIGINT AS e FROM (
    SELECT start_at AS x FROM intervals UNION ALL SELECT end_at FROM intervals
) WHERE x IS NOT NULL;
CREATE OR REPLACE TEMP TABLE _clock AS
SELECT i.e, CASE WHEN c.open_epoch IS NULL THEN 0
                 ELSE c.cum_before + least(greatest(i.e - c.open_epoch, 0), c.business_seconds) END AS clock
FROM _instants i ASOF LEFT JOIN business_calendar c ON i.e >= c.open_epoch;
CREATE OR REPLACE TEMP TABLE duration_out AS
SELECT v.id, greatest(ce.clock - cs.clock, 0) AS business_seconds
FROM intervals v
JOIN _clock cs ON cs.e = epoch(v.start_at)::BIGINT
JOIN _clock ce ON ce.e = epoch(v.end_at)::BIGINT;
"""

DUCK_DUE = """
CREATE OR REPLACE TEMP TABLE _due_instants AS
SELECT DISTINCT epoch(start_at)::BIGINT AS e FROM due_requests;
CREATE OR REPLACE TEMP TABLE _due_clock AS
SELECT i.e, CASE WHEN c.open_epoch IS NULL THEN 0
                 ELSE c.cum_before + least(greatest(i.e - c.open_epoch, 0), c.business_seconds) END AS clock
FROM _due_instants i ASOF LEFT JOIN business_calendar c ON i.e >= c.open_epoch;
CREATE OR REPLACE TEMP TABLE due_out AS
SELECT m.id,
       CASE WHEN m.target_seconds = 0 THEN m.start_at
            ELSE to_timestamp(c.open_epoch + (m.goal - c.cum_before)) END AS due_at
FROM (SELECT r.id, r.start_at, r.target_seconds, k.clock + r.target_seconds AS goal
      FROM due_requests r JOIN _due_clock k ON k.e = epoch(r.start_at)::BIGINT) m
ASOF LEFT JOIN business_calendar c ON m.goal > c.cum_before;
"""

# The same formula, ASOF-joining the input rows directly (no DISTINCT, no join back).
DUCK_DIRECT_DURATION = """
CREATE OR REPLACE TEMP TABLE duration_out AS
WITH v AS (SELECT id, epoch(start_at)::BIGINT AS s, epoch(end_at)::BIGINT AS e FROM intervals),
a AS (
    SELECT v.id, v.e, CASE WHEN c.open_epoch IS NULL THEN 0
           ELSE c.cum_before + least(greatest(v.s - c.open_epoch, 0), c.business_seconds) END AS cs
    FROM v ASOF LEFT JOIN business_calendar c ON v.s >= c.open_epoch
)
SELECT a.id, greatest(CASE WHEN c.open_epoch IS NULL THEN 0
           ELSE c.cum_before + least(greatest(a.e - c.open_epoch, 0), c.business_seconds) END - a.cs, 0)
       AS business_seconds
FROM a ASOF LEFT JOIN business_calendar c ON a.e >= c.open_epoch;
"""

DUCK_DIRECT_DUE = """
CREATE OR REPLACE TEMP TABLE due_out AS
WITH r AS (SELECT id, start_at, target_seconds, epoch(start_at)::BIGINT AS s FROM due_requests),
m AS (
    SELECT r.id, r.start_at, r.target_seconds,
           CASE WHEN c.open_epoch IS NULL THEN 0
                ELSE c.cum_before + least(greatest(r.s - c.open_epoch, 0), c.business_seconds) END
           + r.target_seconds AS goal
    FROM r ASOF LEFT JOIN business_calendar c ON r.s >= c.open_epoch
)
SELECT m.id, CASE WHEN m.target_seconds = 0 THEN m.start_at
                  ELSE to_timestamp(c.open_epoch + (m.goal - c.cum_before)) END AS due_at
FROM m ASOF LEFT JOIN business_calendar c ON m.goal > c.cum_before;
"""


# Proposed: replace the ASOF joins by equi-joins on buckets. Every opening instant is a multiple of
# B seconds (B = gcd of the opening epochs: 3600 for Europe/Berlin 09:00), so "the last business day
# opened at or before t" is the same for every t in one bucket [base + kB, base + (k+1)B): one row per
# bucket, found with a hash join on (t - base) // B. Likewise every cumulative total is a multiple of
# G (gcd of the day lengths: 28 800 s), so the day holding business second `goal` is row
# (goal - 1) // G of a second table. Instants before the first / after the last bucket are clamped
# into it (exact: no day opens there). Shifting by `base` keeps the integer division on
# non-negative numbers (DuckDB's `//` truncates toward zero).
def write_bucket_tables(con, cal: BusinessCalendar) -> dict:
    opens = [d.open_epoch for d in cal.days]
    b = math.gcd(*opens)
    g = math.gcd(*(d.seconds for d in cal.days))
    base = opens[0] - opens[0] % b
    n = (cal.days[-1].close_epoch - base) // b + 1
    total = cal.days[-1].cum_before + cal.days[-1].seconds
    if n > 20_000_000 or total // g > 20_000_000:
        raise ValueError("calendar too irregular for buckets; keep the ASOF join")
    con.execute(f"""
        CREATE OR REPLACE TABLE business_clock_buckets AS
        SELECT r.k, coalesce(c.open_epoch, 0) AS open_epoch, coalesce(c.business_seconds, 0) AS business_seconds,
               coalesce(c.cum_before, 0) AS cum_before
        FROM range(0, {n} + 1) r(k) ASOF LEFT JOIN business_calendar c ON {base} + r.k * {b} >= c.open_epoch""")
    con.execute(f"""
        CREATE OR REPLACE TABLE business_due_buckets AS
        SELECT r.q, c.open_epoch, c.cum_before
        FROM range(0, {total // g}) r(q) ASOF JOIN business_calendar c ON r.q * {g} >= c.cum_before""")
    return {"B": b, "G": g, "base": base, "n": n, "clock_buckets": n + 1, "due_buckets": total // g}


def _bucket_clock(alias: str, col: str, p: dict) -> tuple[str, str]:
    """(join clause, clock expression) for epoch column `col` via bucket table alias `alias`."""
    join = (f"JOIN business_clock_buckets {alias} "
            f"ON {alias}.k = least(greatest({col} - {p['base']}, 0) // {p['B']}, {p['n']})")
    clock = f"{alias}.cum_before + least(greatest({col} - {alias}.open_epoch, 0), {alias}.business_seconds)"
    return join, clock


def bucket_sql(p: dict) -> tuple[str, str]:
    js, cs = _bucket_clock("ks", "v.s", p)
    je, ce = _bucket_clock("ke", "v.e", p)
    duration = f"""
CREATE OR REPLACE TEMP TABLE duration_out AS
WITH v AS (SELECT id, epoch(start_at)::BIGINT AS s, epoch(end_at)::BIGINT AS e FROM intervals)
SELECT v.id, greatest(({ce}) - ({cs}), 0) AS business_seconds
FROM v {js} {je};
"""
    jr, cr = _bucket_clock("k", "r.s", p)
    due = f"""
CREATE OR REPLACE TEMP TABLE due_out AS
WITH r AS (SELECT id, start_at, target_seconds, epoch(start_at)::BIGINT AS s FROM due_requests),
m AS (SELECT r.id, r.start_at, r.target_seconds, {cr} + r.target_seconds AS goal FROM r {jr})
SELECT m.id, CASE WHEN m.target_seconds = 0 THEN m.start_at
                  ELSE to_timestamp(d.open_epoch + (m.goal - d.cum_before)) END AS due_at
FROM m LEFT JOIN business_due_buckets d ON d.q = (m.goal - 1) // {p['G']};
"""
    return duration, due


class DuckKernel:
    def __init__(self, cal: BusinessCalendar, inp: dict, variant: str = "pipeline"):
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        write_business_calendar(self.con, cal)
        n = len(inp["start"])
        iv_arrow = pa.table({"id": pa.array(np.arange(n)), "start_at": _ts(inp["start"]), "end_at": _ts(inp["end"])})  # noqa: F841
        dq_arrow = pa.table({"id": pa.array(np.arange(n)), "start_at": _ts(inp["due_start"]),  # noqa: F841
                             "target_seconds": pa.array(inp["target"])})
        self.con.execute(DUCK_SETUP)
        if variant == "bucket":
            self.buckets = write_bucket_tables(self.con, cal)
            self.duration_sql, self.due_sql = bucket_sql(self.buckets)
        elif variant == "direct":
            self.duration_sql, self.due_sql = DUCK_DIRECT_DURATION, DUCK_DIRECT_DUE
        else:
            self.duration_sql, self.due_sql = DUCK_DURATION, DUCK_DUE

    def duration(self):
        self.con.execute(self.duration_sql)

    def due(self):
        self.con.execute(self.due_sql)

    def results(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.con.execute("SELECT business_seconds FROM duration_out ORDER BY id").fetchnumpy()["business_seconds"]
        u = self.con.execute("SELECT epoch(due_at)::BIGINT AS e FROM due_out ORDER BY id").fetchnumpy()["e"]
        return np.asarray(d, np.int64), np.asarray(u, np.int64)

    def close(self):
        self.con.close()


# ----------------------------------------------------------------------------------- polars
class PolarsKernel:
    def __init__(self, cal: BusinessCalendar, inp: dict):
        t = cal.to_arrow()
        self.cal = pl.from_arrow(t.select(["open_epoch", "business_seconds", "cum_before"]))
        self.inv = pl.from_arrow(t.select(["open_epoch", "cum_before"])).rename(
            {"open_epoch": "d_open", "cum_before": "d_cum"})
        n = len(inp["start"])
        self.iv = pl.from_arrow(pa.table({"id": pa.array(np.arange(n)), "start_at": _ts(inp["start"]),
                                          "end_at": _ts(inp["end"])}))
        self.dq = pl.from_arrow(pa.table({"id": pa.array(np.arange(n)), "start_at": _ts(inp["due_start"]),
                                          "target_seconds": pa.array(inp["target"])}))
        self.dur_out = self.due_out = None

    def _clock(self, df: pl.DataFrame, epoch_col: str, out: str) -> pl.DataFrame:
        j = df.sort(epoch_col).join_asof(self.cal, left_on=epoch_col, right_on="open_epoch", strategy="backward",
                                          coalesce=False)
        clock = pl.when(pl.col("open_epoch").is_null()).then(0).otherwise(
            pl.col("cum_before") + (pl.col(epoch_col) - pl.col("open_epoch")).clip(0, pl.col("business_seconds")))
        return j.with_columns(clock.alias(out)).drop(["open_epoch", "business_seconds", "cum_before"])

    def duration(self):
        df = self.iv.select("id", pl.col("start_at").dt.epoch("s").alias("s"), pl.col("end_at").dt.epoch("s").alias("e"))
        df = self._clock(df, "s", "cs")
        df = self._clock(df, "e", "ce")
        self.dur_out = df.select("id", (pl.col("ce") - pl.col("cs")).clip(lower_bound=0).alias("business_seconds"))

    def due(self):
        df = self.dq.with_columns(pl.col("start_at").dt.epoch("s").alias("s"))
        df = self._clock(df, "s", "cs").with_columns((pl.col("cs") + pl.col("target_seconds")).alias("goal"))
        df = df.sort("goal").join_asof(self.inv, left_on="goal", right_on="d_cum", strategy="backward",
                                       allow_exact_matches=False, coalesce=False)
        due = pl.when(pl.col("target_seconds") == 0).then(pl.col("start_at")).otherwise(
            pl.from_epoch(pl.col("d_open") + pl.col("goal") - pl.col("d_cum"), time_unit="s")
            .dt.cast_time_unit("us").dt.replace_time_zone("UTC"))
        self.due_out = df.select("id", due.alias("due_at"))

    def results(self):
        d = self.dur_out.sort("id")["business_seconds"].to_numpy()
        u = self.due_out.sort("id")["due_at"].dt.epoch("s").to_numpy()
        return np.asarray(d, np.int64), np.asarray(u, np.int64)

    def close(self):
        self.dur_out = self.due_out = self.iv = self.dq = None


# ----------------------------------------------------------------------------------- pandas
class PandasCBH:
    """What a pandas user would write: CustomBusinessHour with the holiday list, in local time.

    duration: roll both ends forward to business time (closed time does not count), then
              whole business days between them (CustomBusinessDay) x 8 h + the difference of
              the times of day.
    due:      start + CustomBusinessHour(n=target hours).
    """

    def __init__(self, policy, hol_dates: list[dt.date]):
        self.tz = policy.calendar.timezone
        self.hol = hol_dates
        self.cbh = pd.offsets.CustomBusinessHour(start="09:00", end="17:00", holidays=hol_dates)
        self.cbd = pd.offsets.CustomBusinessDay(holidays=hol_dates)
        self.day = 8 * HOUR

    def _local(self, epochs):
        return pd.Series(pd.to_datetime(epochs, unit="s", utc=True)).dt.tz_convert(self.tz)

    def duration(self, start, end) -> np.ndarray:
        cbh, cbd, day = self.cbh, self.cbd, self.day

        def seconds(a, b):
            if b <= a:
                return 0
            a, b = cbh.rollforward(a), cbh.rollforward(b)
            if b <= a:
                return 0
            days = len(pd.date_range(a.normalize(), b.normalize(), freq=cbd, inclusive="left"))
            return int(days * day + (b - b.normalize()).total_seconds() - (a - a.normalize()).total_seconds())

        s, e = self._local(start), self._local(end)
        return np.array([seconds(a, b) for a, b in zip(s, e)], np.int64)

    def due(self, start, target) -> np.ndarray:
        df = pd.DataFrame({"start": self._local(start), "hours": target // HOUR})
        df["due"] = df["start"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PerformanceWarning: non-vectorized DateOffset
            for h, idx in df.groupby("hours").groups.items():
                off = pd.offsets.CustomBusinessHour(n=int(h), start="09:00", end="17:00", holidays=self.hol)
                df.loc[idx, "due"] = df.loc[idx, "start"] + off
        return (df["due"].dt.tz_convert("UTC").astype("int64") // 10**6).to_numpy()  # us -> s


# ----------------------------------------------------------------------------------- businesstimedelta
class BTD:
    """businesstimedelta: WorkDayRule (Mon-Fri 09-17 Europe/Berlin) + HolidayRule, per pair."""

    def __init__(self, policy, hol):
        import businesstimedelta as btd
        import pytz

        tz = pytz.timezone(policy.calendar.timezone)
        work = btd.WorkDayRule(start_time=dt.time(9), end_time=dt.time(17), working_days=[0, 1, 2, 3, 4], tz=tz)
        self.rules = btd.Rules([work, btd.HolidayRule(hol, tz=tz)])
        self.btd = btd

    def duration(self, start, end) -> np.ndarray:
        rules, f = self.rules, dt.datetime.fromtimestamp
        out = []
        for a, b in zip(start.tolist(), end.tolist()):
            if b <= a:  # the library returns |b - a|'s business time for reversed pairs; the contract says 0
                out.append(0)
                continue
            out.append(int(rules.difference(f(a, UTC), f(b, UTC)).timedelta.total_seconds()))
        return np.array(out, np.int64)

    def reversed_unguarded(self, start, end) -> int:
        """How many reversed pairs the bare `rules.difference(start, end)` answers with a positive time."""
        rules, f = self.rules, dt.datetime.fromtimestamp
        return sum(1 for a, b in zip(start.tolist(), end.tolist())
                   if b < a and rules.difference(f(a, UTC), f(b, UTC)).timedelta.total_seconds() > 0)

    def due(self, start, target) -> np.ndarray:
        rules, f, delta = self.rules, dt.datetime.fromtimestamp, self.btd.BusinessTimeDelta
        return np.array([int((f(a, UTC) + delta(rules, seconds=t)).timestamp())
                         for a, t in zip(start.tolist(), target.tolist())], np.int64)


# ----------------------------------------------------------------------------------- exactness
def classify(kind: str, idx: np.ndarray, got: np.ndarray, want: np.ndarray, inp: dict, cal: BusinessCalendar,
             tz) -> Counter:
    """Why a library's answer differs from ours, per wrong answer."""
    reasons = Counter()
    fromts = dt.datetime.fromtimestamp
    closes = {d.close_epoch for d in cal.days}
    for i, g, w in zip(idx.tolist(), got.tolist(), want.tolist()):
        if kind == "due":
            same_clock = cal.clock(fromts(g, UTC)) == cal.clock(fromts(w, UTC))
            if w in closes and same_clock and g > w:
                reasons["target reached exactly at closing time: returned the next opening "
                        "(same business clock, later wall-clock instant)"] += 1
            elif same_clock:
                reasons["same business clock, different instant"] += 1
            else:
                reasons["different business clock"] += 1
        else:
            s, e = int(inp["start"][i]), int(inp["end"][i])
            if e <= s:
                reasons["reversed/empty interval"] += 1
            else:
                reasons[f"off by {g - w:+d} s" if abs(g - w) <= 3 * HOUR else "other"] += 1
    return reasons


def compare(name, kind, idx, got, want, inp, cal, tz) -> dict:
    wrong = np.flatnonzero(got != want)
    examples = []
    for j in wrong[:5].tolist():
        i = int(idx[j])
        if kind == "due":
            examples.append({"start": dt.datetime.fromtimestamp(int(inp["due_start"][i]), tz).isoformat(),
                             "target_hours": int(inp["target"][i]) // HOUR,
                             "got": dt.datetime.fromtimestamp(int(got[j]), tz).isoformat(),
                             "want": dt.datetime.fromtimestamp(int(want[j]), tz).isoformat()})
        else:
            examples.append({"start": dt.datetime.fromtimestamp(int(inp["start"][i]), tz).isoformat(),
                             "end": dt.datetime.fromtimestamp(int(inp["end"][i]), tz).isoformat(),
                             "got": int(got[j]), "want": int(want[j])})
    return {"library": name, "kernel": kind, "checked": int(len(idx)), "wrong": int(len(wrong)),
            "reasons": dict(classify(kind, idx[wrong], got[wrong], want[wrong], inp, cal, tz)),
            "examples": examples}


# ----------------------------------------------------------------------------------- timing
def _run(fn) -> dict:
    """Wall and process CPU time (all threads) of one call, with the 1-minute load average."""
    gc.collect()
    load = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "load1": load}


SET_BASED = {
    "duckdb": lambda cal, inp: DuckKernel(cal, inp, "pipeline"),
    "duckdb_direct": lambda cal, inp: DuckKernel(cal, inp, "direct"),
    "duckdb_bucket": lambda cal, inp: DuckKernel(cal, inp, "bucket"),
    "polars": lambda cal, inp: PolarsKernel(cal, inp),
}


def bench_set_based(runs: int, cal, inp) -> tuple[list[dict], dict]:
    """All set-based kernels on the same inputs, interleaved run by run (so that background load
    hits every library alike); returns per-library timings and their answers."""
    kernels = {label: make(cal, inp) for label, make in SET_BASED.items()}
    samples = {label: {"duration": [], "due": []} for label in kernels}
    for r in range(runs):
        order = list(kernels) if r % 2 == 0 else list(reversed(kernels))
        for label in order:
            samples[label]["duration"].append(_run(kernels[label].duration))
            samples[label]["due"].append(_run(kernels[label].due))
    results, answers = [], {}
    n = len(inp["start"])
    for label, k in kernels.items():
        answers[label] = k.results()
        k.close()
        d, u = samples[label]["duration"], samples[label]["due"]
        res = {"library": label, "n": n, "runs": runs,
               "duration_s": [x["wall_s"] for x in d], "due_s": [x["wall_s"] for x in u],
               "duration_cpu_s": [x["cpu_s"] for x in d], "due_cpu_s": [x["cpu_s"] for x in u],
               "load1": [x["load1"] for x in d + u],
               "duration_median_s": median([x["wall_s"] for x in d]),
               "due_median_s": median([x["wall_s"] for x in u]),
               "total_median_s": median([a["wall_s"] + b["wall_s"] for a, b in zip(d, u)]),
               "total_cpu_median_s": median([a["cpu_s"] + b["cpu_s"] for a, b in zip(d, u)])}
        if label == "duckdb_bucket":
            res["buckets"] = k.buckets
        results.append(res)
        print(f"  {label:14s} n={n:>11,}  duration {fmt_s(res['duration_median_s'])}  due {fmt_s(res['due_median_s'])}"
              f"  total {fmt_s(res['total_median_s'])} (cpu {fmt_s(res['total_cpu_median_s'])}, median of {runs}, "
              f"load {min(res['load1']):.1f}-{max(res['load1']):.1f})", flush=True)
    return results, answers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--runs", type=int, default=5, help="runs for sizes < 10M (default 5)")
    ap.add_argument("--runs-large", type=int, default=3, help="runs for sizes >= 10M (default 3)")
    ap.add_argument("--sample", type=int, default=10_000, help="pairs for pandas and businesstimedelta")
    ap.add_argument("--sample-runs", type=int, default=3)
    ap.add_argument("--verify", type=int, default=1_000_000,
                    help="rows of each size checked against the Python API (all rows if >= size)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--quick", action="store_true", help="100k intervals, 2k sample, 3 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.sample, args.runs, args.sample_runs, args.verify = [100_000], 2_000, 3, 1, 100_000

    policy = load_policy()
    tz = policy.calendar.tz
    cal = BusinessCalendar.from_policy(policy.calendar, CAL_FIRST, CAL_LAST)
    hol = holidays_lib.country_holidays(policy.calendar.holidays.country, subdiv=policy.calendar.holidays.subdivision,
                                        years=range(CAL_FIRST.year, CAL_LAST.year + 1))
    hol_dates = sorted(hol.keys())
    days = Days(policy)
    print(f"calendar: {len(cal.days)} business days {cal.first_day}..{cal.last_day}, "
          f"{len(hol_dates)} holidays", flush=True)

    out = {"benchmark": "business_time_kernel", "machine": machine(), "args": vars(args),
           "calendar": {"first": str(CAL_FIRST), "last": str(CAL_LAST), "business_days": len(cal.days),
                        "timezone": policy.calendar.timezone, "holidays": len(hol_dates)},
           "set_based": [], "per_element": [], "exactness": []}

    for size in args.sizes:
        runs = args.runs_large if size >= 10_000_000 else args.runs
        print(f"\n== {size:,} intervals and {size:,} (start, target) pairs", flush=True)
        inp = make_inputs(size, args.seed, days)
        nver = min(args.verify, size)
        rng = np.random.default_rng(args.seed + 1)
        vidx = np.arange(size) if nver >= size else np.sort(rng.choice(size, nver, replace=False))
        t_ref, want = timed(reference, cal, inp, vidx)
        print(f"  reference (Python BusinessCalendar) on {nver:,} rows: {fmt_s(t_ref)}", flush=True)
        results, outs = bench_set_based(runs, cal, inp)
        out["set_based"] += results
        for label, (got_dur, got_due) in outs.items():
            for kind, got, w in (("duration", got_dur, want[0]), ("due", got_due, want[1])):
                c = compare(label, kind, vidx, got[vidx], w, inp, cal, tz)
                c["n"] = size
                out["exactness"].append(c)
                print(f"    {label} {kind}: {c['wrong']} wrong of {c['checked']:,} checked", flush=True)
        agree = all(np.array_equal(outs["duckdb"][k], outs[o][k]) for o in outs for k in (0, 1))
        out.setdefault("all_rows_agree", {})[str(size)] = agree
        print(f"  {', '.join(outs)} agree on all {size:,} rows: {agree}", flush=True)
        del outs, inp
        gc.collect()

    # ---- per-element libraries on a sample (same generator, first `sample` rows)
    print(f"\n== per-element libraries on a sample of {args.sample:,} pairs", flush=True)
    inp = make_inputs(args.sample, args.seed, days)
    idx = np.arange(args.sample)
    want = reference(cal, inp, idx)
    for label, lib in (("pandas_cbh", PandasCBH(policy, hol_dates)), ("businesstimedelta", BTD(policy, hol))):
        dur_t, due_t, loads = [], [], []
        for _ in range(args.sample_runs):
            loads.append(os.getloadavg()[0])
            t1, got_dur = timed(lib.duration, inp["start"], inp["end"])
            t2, got_due = timed(lib.due, inp["due_start"], inp["target"])
            dur_t.append(t1)
            due_t.append(t2)
        per_dur, per_due = median(dur_t) / args.sample, median(due_t) / args.sample
        res = {"library": label, "n": args.sample, "runs": args.sample_runs, "duration_s": dur_t, "due_s": due_t,
               "duration_median_s": median(dur_t), "due_median_s": median(due_t),
               "per_pair_duration_s": per_dur, "per_pair_due_s": per_due, "load1": loads,
               "extrapolated": {str(s): {"duration_s": per_dur * s, "due_s": per_due * s,
                                         "total_s": (per_dur + per_due) * s} for s in args.sizes}}
        if isinstance(lib, BTD):
            res["reversed_pairs"] = int((inp["end"] < inp["start"]).sum())
            res["reversed_pairs_answered_positive_without_guard"] = lib.reversed_unguarded(inp["start"], inp["end"])
        out["per_element"].append(res)
        print(f"  {label:18s} sample {args.sample:,}: duration {fmt_s(res['duration_median_s'])} "
              f"({fmt_s(per_dur)}/pair), due {fmt_s(res['due_median_s'])} ({fmt_s(per_due)}/pair)", flush=True)
        for kind, got, w in (("duration", got_dur, want[0]), ("due", got_due, want[1])):
            c = compare(label, kind, idx, got, w, inp, cal, tz)
            c["n"] = args.sample
            out["exactness"].append(c)
            print(f"    {label} {kind}: {c['wrong']} wrong of {c['checked']:,}  {c['reasons']}", flush=True)

    path = save_results("business_time_kernel" + ("_quick" if args.quick else ""), out)
    print_tables(out)
    print(f"\nresults: {path}")


def print_tables(out: dict) -> None:
    print("\n| library | intervals | runs | duration (median) | due (median) | total | vs duckdb |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = {r["n"]: r["total_median_s"] for r in out["set_based"] if r["library"] == "duckdb"}
    for r in out["set_based"]:
        print(f"| {r['library']} | {r['n']:,} | {r['runs']} | {fmt_s(r['duration_median_s'])} | "
              f"{fmt_s(r['due_median_s'])} | {fmt_s(r['total_median_s'])} | "
              f"{r['total_median_s'] / base[r['n']]:.2f}x |")
    for r in out["per_element"]:
        for s, x in r["extrapolated"].items():
            n = int(s)
            print(f"| {r['library']} (extrapolated from {r['n']:,}) | {n:,} | {r['runs']} | "
                  f"~{fmt_s(x['duration_s'])} | ~{fmt_s(x['due_s'])} | ~{fmt_s(x['total_s'])} | "
                  f"~{x['total_s'] / base[n]:.0f}x |" if n in base else "")
    print("\n| library | kernel | size | checked | wrong | reasons |")
    print("|---|---|---:|---:|---:|---|")
    for c in out["exactness"]:
        print(f"| {c['library']} | {c['kernel']} | {c['n']:,} | {c['checked']:,} | {c['wrong']:,} | "
              f"{'; '.join(f'{k}: {v}' for k, v in c['reasons'].items()) or '-'} |")


if __name__ == "__main__":
    main()
