"""Operator jobs the CLI runs: replay a topic, and (later) promote/rollback/predict."""
