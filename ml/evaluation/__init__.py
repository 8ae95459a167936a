"""ml/evaluation."""
