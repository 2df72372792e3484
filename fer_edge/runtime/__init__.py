"""fer-edge runtime."""
