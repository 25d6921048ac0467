"""Model weights: the registry (name -> URL, sha256, kind) and the cache. No torch here."""
