"""vidfleet coordinator: the HTTP API, dispatch, reconciler, exporter and the vidfleet CLI."""
