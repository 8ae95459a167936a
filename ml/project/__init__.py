"""ml/project."""
