"""One module per CLI command: thin wrappers over library code."""
