"""Version numbers: the wire protocol's (sent in `hello`) and the software's."""

PROTOCOL_VERSION = 1
SOFTWARE_VERSION = "0.1.0"
