"""The gatekeeper: Triton serving, infra validation, shadow comparison, promotion on evidence, and the
operator's commands (models.commands.v1: promote, rollback, approve, reject). It is the only writer of
the Triton model repository and of the MLflow aliases ``champion`` and ``challenger``.
"""
