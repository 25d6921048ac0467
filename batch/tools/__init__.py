"""Laptop-side helpers behind scripts/: the status table of a running or finished job."""
