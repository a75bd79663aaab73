"""``python -m bot.cli`` runs the ``shopbot`` command."""

from bot.cli.main import main

main()
