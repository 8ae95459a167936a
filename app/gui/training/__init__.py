"""app/gui/training."""
