"""immunorehab.cytometry."""
