"""vidfleet detector: model runner, SORT tracker, video pipeline."""
