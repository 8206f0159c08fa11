"""Sample view models for the report tests (the builder lives in reports.sample)."""

from reports.sample import empty_report, sample_report  # noqa: F401
