"""fer-edge build."""
