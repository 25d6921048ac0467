"""Frame stages, each a ladder of backends tried in order."""
