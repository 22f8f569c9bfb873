"""`codoc-fhir import`: bulk load of NDJSON and Bundle files (docs/IMPORT.md).

importer (the run, batches, retries, summary), files (reading files, Bundle entry order),
ids (the id map and reference rewriting), progress (progress output).
"""
