"""`sla deliver`: e-mail the month's customer reports to their account managers."""

from __future__ import annotations

from pipelines.resources import smtp_resource
from pipelines.settings import ConfigError, load_settings
from sla import warehouse
from sla.delivery import deliver


def cmd_deliver(args) -> int:
    smtp = None if args.dry_run else smtp_resource(load_settings(), as_env_var=False).settings()
    if smtp is None and not args.dry_run:
        raise ConfigError("no SMTP server configured: set SLA_SMTP_HOST (and SLA_SMTP_PORT, SLA_MAIL_FROM, ...) "
                          "or use --dry-run")
    with warehouse.exclusive(args.db, "sla deliver"), warehouse.connect(args.db) as con:
        result = deliver(con, args.out, args.month, smtp, dry_run=args.dry_run, resend=args.resend)
    print(result.text())
    return 1 if result.failed else 0


def add_deliver_parser(sub, month_type) -> None:
    p = sub.add_parser("deliver", help="e-mail the month's customer reports to their account managers")
    p.add_argument("--db", required=True, help="DuckDB warehouse file")
    p.add_argument("--out", required=True, help="the folder the reports were written to")
    p.add_argument("--month", required=True, type=month_type, help="YYYY-MM")
    p.add_argument("--dry-run", action="store_true", help="write .eml files to <out>/<YYYY-MM>/outbox/ instead")
    p.add_argument("--resend", action="store_true", help="send again to recipients already served this month")
    p.set_defaults(func=cmd_deliver)
