"""The interaction layer: read, vread, search, create, update, patch, delete, history and
operations, with no HTTP framework in them (docs/ARCHITECTURE.md).

REST routes (api/) and Bundle entries call the same functions; each takes a Database (its
own transaction, or a `Joined` one), a Caller (who asks: interactions/caller.py holds the
one authorization sequence) and what it is about, and returns a resource or a Bundle or
raises a FhirError.
"""
