"""Sample view models for the report tests (the builder lives in tests.fixtures.sample_report)."""

from tests.fixtures.sample_report import empty_report, sample_report  # noqa: F401
