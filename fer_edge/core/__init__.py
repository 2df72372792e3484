"""fer-edge core."""
