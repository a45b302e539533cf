"""The hardware agent: serial and tailed-file sources, and the drivers that turn their bytes into
reports (Kegboard, ID-12 RFID readers, sensor lines, log tails)."""
