"""fer-edge moodlog."""
