"""The checks of postgres-diagnostics, one module per category."""
