"""The FastAPI service. Nothing in the engine imports this package."""
