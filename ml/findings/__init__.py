"""ml/findings."""
