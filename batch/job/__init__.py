"""The worker program: the batch (runner), one input (pipeline), chunks, shards, manifest, heartbeat."""
