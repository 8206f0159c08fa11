"""The one interface every ticket-system connector implements.

A connector *stages* what it read into DuckDB staging tables shaped like the canonical export
(`stg_tickets`, `stg_ticket_events`, `stg_contracts`, optionally `stg_invoices`; all text
columns plus `line`, and `stg_<table>_malformed` for records it could not parse). Validation,
rejects and everything after it are shared (`sla.ingest`), so every source obeys the same rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class ExportError(Exception):
    """The input cannot be read at all (missing folder or file, missing columns). One line."""


class TicketSource(ABC):
    """A source of incident histories."""

    #: the connector's name, e.g. "csv", "zendesk", "request_tracker"
    name: str
    #: `rejects.source` per staged table (default: the canonical export's file names); API
    #: sources use e.g. {"tickets": "zendesk:ticket"} and stage `source_ref` + `raw` columns
    labels: dict[str, str] = {}

    @abstractmethod
    def stage(self, con) -> dict[str, int]:
        """Fill the staging tables; return the number of input records per staged table
        (`tickets`, `ticket_events`, `contracts`, optionally `invoices`)."""

    def rejected_rows_sql(self, con, stg: str, rejected: str) -> str:
        """SELECT line, reason, raw for `rejected` (a table of line, reason of rows staged as `stg`):
        the records as received. Only file sources need it; API sources stage `raw` themselves."""
        raise NotImplementedError(f"{self.name}: staged rows without `raw` cannot be quoted")
