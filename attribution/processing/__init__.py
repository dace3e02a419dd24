"""Stage 4, the worker side: inbox rows to events to conversions, in one transaction."""
