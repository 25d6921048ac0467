"""The supervisor (PID 1) and the watchdog: verify the bucket, then stop the instance.

Nothing in this package imports numpy, PIL, torch or the job's pipeline: PID 1
and the watchdog must start and decide even when those are broken.
"""
