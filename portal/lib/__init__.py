"""Framework-level helpers with no domain in them, importable from anywhere."""
