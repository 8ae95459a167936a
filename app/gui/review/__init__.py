"""The Review dock: the model's proposals decided one at a time (panel)."""
