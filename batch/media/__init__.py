"""Media I/O: probe, decode to frames, encode from frames; all through pipes."""
