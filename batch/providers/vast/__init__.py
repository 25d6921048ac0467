"""vast.ai: launch (laptop side) and stop (watchdog side) of one instance."""
