"""immunorehab.report."""
