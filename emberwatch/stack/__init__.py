"""The local stack of real components: Kafka (Tansu), MLflow, Triton and Prometheus."""
