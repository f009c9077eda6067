"""Model weights shipped with vidfleet (see training/README.md)."""
