"""immunorehab.cytokines."""
