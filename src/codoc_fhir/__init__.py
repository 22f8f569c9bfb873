"""codoc-fhir: a FHIR R4B (4.3.0) REST server over the Codoc clinical data warehouse."""

__version__ = "0.1.0"
FHIR_VERSION = "4.3.0"
