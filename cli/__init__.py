"""Command-line plumbing shared by every farmhand program: flags, logging, signals."""
