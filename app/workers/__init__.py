"""app/workers."""
