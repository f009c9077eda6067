"""One long video as chunks: the frame-accurate chunk reader, the stitcher and the split run (docs/splitting.md)."""
