"""The Codoc warehouse: schema, engine and shared SQL helpers."""
