"""vidfleet capture: camera and file sources into Redis frame streams (no torch)."""
