"""Detector live mode: lease streams, batch their frames through one model, track each with SORT."""
