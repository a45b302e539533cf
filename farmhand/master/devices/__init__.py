"""The device hub on the master: meters and taps, kegs and pours, people and their tokens,
presence at readers, and sensor readings."""
