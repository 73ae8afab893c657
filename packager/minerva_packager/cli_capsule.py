"""``minerva pack`` and ``minerva inspect``."""

COMMANDS = []
