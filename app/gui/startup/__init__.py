"""app/gui/startup."""
