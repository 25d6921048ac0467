"""``<output>/report.html``: one self-contained page per job output prefix (see docs/report.md).

``data`` (the sidecar ``report-data.json``: inlined images, notes, the watchdog's
verdict) and ``render`` (Jinja2, no IO) need only the standard library and
jinja2, so the watchdog can re-render the page with its verdict; ``page`` reads
and writes the page and its sidecars at a prefix. The job makes the images
(``build``: preview, overlay stills; ``plots``: matplotlib, imported lazily).
Importing this package imports none of them.
"""
