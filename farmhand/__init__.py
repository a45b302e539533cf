"""farmhand: a job farm and device hub. The master's services (`farmhand.master`), the shared
agent runtime (`farmhand.agent`) and the three agents (`farmhand.worker`, `farmhand.hardware`,
`farmhand.node`); docs/architecture.md draws the whole."""

from protocol.version import SOFTWARE_VERSION as __version__

__all__ = ["__version__"]
