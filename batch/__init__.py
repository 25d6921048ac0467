"""GPU video job runner: config -> frames -> stages -> encode -> upload -> manifest."""

__version__ = "0.1.0"
