"""`python -m farmhand.cli`: the `farmhand` command."""

import sys

from farmhand.cli.main import main

sys.exit(main())
