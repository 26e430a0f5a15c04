"""``python -m immunorehab`` runs the CLI."""

from immunorehab.cli.main import main

main()
