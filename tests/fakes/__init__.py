"""In-process stand-ins for outside services, for tests."""
