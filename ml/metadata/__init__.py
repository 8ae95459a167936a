"""ml/metadata."""
