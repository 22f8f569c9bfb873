"""The research warehouse: built-in phenotype extraction (CONTRACT section 11)."""
