"""Feature definitions, one module per family; `features.definitions` assembles them in order."""
