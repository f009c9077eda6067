"""The detector on the fleet: a Celery worker on the `detect` queue running `process_video` per task."""
