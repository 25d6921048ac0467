"""RunPod: launch (laptop side) and stop (watchdog side) of one pod."""
