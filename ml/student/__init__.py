"""ml/student."""
