"""ml/campaign."""
