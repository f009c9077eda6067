"""vidfleet shared contracts: settings, job config, names, result schema. Imports nothing heavy."""

__version__ = "0.1.0"
