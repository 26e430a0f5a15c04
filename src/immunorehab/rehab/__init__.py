"""immunorehab.rehab."""
