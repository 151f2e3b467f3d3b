"""DOE IRI Facility API plugins: ``iri_connect`` (facilities, tokens), ``iri`` (per site)."""
