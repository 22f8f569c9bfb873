"""HTTP: routes generated from the registry, error handlers, middleware."""
