"""One module per FHIR resource mapping (warehouse rows <-> FHIR JSON), and their registry."""
