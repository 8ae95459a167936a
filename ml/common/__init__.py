"""ml/common."""
