"""The SQL of each search parameter type, one module per type."""
