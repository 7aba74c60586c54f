"""Features: feature families, each a pure function of lazy event tables and as_of dates."""
