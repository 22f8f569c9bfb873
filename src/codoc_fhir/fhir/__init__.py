"""What every FHIR resource shares: errors, responses, dates, references, identifiers."""
