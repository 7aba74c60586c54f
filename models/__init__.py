"""Models: labels, training, calibration, baselines, evaluation and the MLflow registry."""
