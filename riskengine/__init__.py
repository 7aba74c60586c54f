"""riskengine: credit-based risk scoring and graded supervision for market-regulation bureaus."""

__version__ = "0.1.0"
