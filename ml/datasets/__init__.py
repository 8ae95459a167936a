"""ml/datasets."""
