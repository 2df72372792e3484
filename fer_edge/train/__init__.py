"""Training (needs torch: ``pip install 'fer-edge[train]'``)."""
