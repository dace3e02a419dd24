"""Stage 5, what dashboards read: counters kept per day and hour, and the reports over them."""
