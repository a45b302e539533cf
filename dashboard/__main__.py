"""`python -m dashboard`, and `farmhand-dashboard` when installed: see dashboard/cli.py."""

import sys

from gevent import monkey


def main() -> int:
    # bottle keeps the current request and response in threading.local objects; under gevent
    # each request is a greenlet, so thread-locals must become greenlet-locals before bottle is
    # imported, or concurrent requests would share (and garble) one response.
    monkey.patch_all()
    from dashboard.cli import main as serve_or_create_admin

    return serve_or_create_admin()


if __name__ == "__main__":
    sys.exit(main())
