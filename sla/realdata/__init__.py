"""Adapters that turn real, third-party ticket logs into the canonical export.

See docs/real-data.md for the mapping decisions.
"""

from sla.realdata.servicenow import servicenow_to_canonical

__all__ = ["servicenow_to_canonical"]
