"""app/gui/findings."""
