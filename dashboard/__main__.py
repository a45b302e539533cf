"""`python -m dashboard`: see dashboard/cli.py."""

# bottle keeps the current request and response in threading.local objects; under gevent each
# request is a greenlet, so thread-locals must become greenlet-locals before bottle is imported,
# or concurrent requests would share (and garble) one response.
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from dashboard.cli import main  # noqa: E402

sys.exit(main())
