"""fer-edge bench."""
