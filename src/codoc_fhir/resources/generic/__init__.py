"""Every R4B resource type the warehouse does not map, stored whole (CONTRACT section 9):
`definitions` (the R4B search parameters and compartment), `extract` (FHIRPath search
values), `search` (the index-table SQL), `resource` (the mapping)."""
