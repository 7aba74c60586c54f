"""The lake: ingest and validation of source folders, and the Parquet layout the engine reads."""
