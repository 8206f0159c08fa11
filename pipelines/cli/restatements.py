"""`sla restatements --month YYYY-MM`: what changed in delivered reports (sla-semantics.md section 6)."""

from __future__ import annotations

from sla import warehouse
from sla.restatements import restatements


def cmd_restatements(args) -> int:
    with warehouse.connect(args.db, read_only=True) as con:
        rows = restatements(con, args.month)
    if not rows:
        print(f"no changes to delivered reports of {args.month}")
        return 0
    print(f"changes to delivered reports of {args.month}: {len(rows)}")
    print("customer\tmonth\tfigure\twas\tnow\twhy")
    for cid, month, figure, was, now, why in rows:
        print(f"{cid}\t{month}\t{figure}\t{was}\t{now}\t{why or 'unknown'}")
    return 0


def add_restatements_parser(sub, month_type, default_db: str) -> None:
    p = sub.add_parser("restatements", help="list changes to a delivered month's figures (was / now / why)")
    p.add_argument("--month", required=True, type=month_type, help="YYYY-MM")
    p.add_argument("--db", default=default_db, help="DuckDB warehouse file")
    p.set_defaults(func=cmd_restatements)
