"""FHIR search over the warehouse tables.

- `model`: the query string parsed once into a typed `SearchRequest`;
- `declare`: builders resource modules use to declare their parameters as data;
- `types/`: the SQL of each parameter type (token, reference, date, string, quantity);
- `clauses`: the WHERE clause of one resource kind for a request;
- `execute`: ordering, keyset paging across the kinds of a type, totals, _include;
- `bundle`: the searchset Bundle (links, entries, _elements);
- `api`: the routes (type, Codoc sub-path, _search, Patient compartment).
"""
