"""`python -m pipelines.cli ...`: the `sla` command."""

import sys

from pipelines.cli import main

sys.exit(main())
