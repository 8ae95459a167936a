"""ml/training."""
