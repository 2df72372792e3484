"""fer-edge model."""
