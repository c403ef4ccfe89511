"""The trainer: turns labelled tiles into ResNet50-head candidates registered in MLflow."""
