"""immunorehab.analysis."""
