"""Stage 3, who earned it: rules that ask the database questions and decide. Never writes."""
