"""`codoc-fhir import`: bulk load of NDJSON and Bundle files (docs/IMPORT.md).

importer (the run, batches, retries, checkpoints), files (reading files, file and Bundle
entry order), ids (the id map and reference rewriting), failures (failures and their
summary by cause), lock (one import at a time per database), progress (progress output),
ahead (the R4B model check of NDJSON lines in a second process), statistics (the
planner's statistics refreshed in a thread as the tables fill).
"""
