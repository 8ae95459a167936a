"""ml/prediction."""
