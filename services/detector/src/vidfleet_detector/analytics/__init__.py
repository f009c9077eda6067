"""Counting lines and zones: geometry, the counter, and its hooks into process_video and the live detector."""
