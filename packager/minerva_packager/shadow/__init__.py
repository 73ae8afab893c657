"""The Minerva core from the desktop: a board's shadow test and its report."""
