"""compose.yaml's mlflow-init job: the MLflow user the services authenticate as (idempotent).

    python mlflow_service_user.py TRACKING_URI USERNAME

Signs in as MLflow's admin (password from the compose secret mlflow_admin_password, a file under
$SECRETS_DIR, default /run/secrets) and creates USERNAME with the password of the compose secret
mlflow_service_password (which the services get as EMBERWATCH_MLFLOW_TRACKING_PASSWORD), or sets
that password again when the user exists. The user is no admin: it manages what it creates
(the trainer's experiments and registered model, which the gatekeeper, signed in as the same user,
aliases) and reads the rest (the default permission READ).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(tracking_uri: str, username: str) -> str:
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    secrets = Path(os.environ.get("SECRETS_DIR", "/run/secrets"))
    password = (secrets / "mlflow_service_password").read_text().strip()
    if not password:
        raise SystemExit(f"{secrets / 'mlflow_service_password'} is empty")
    admin_password = (secrets / "mlflow_admin_password").read_text().strip()
    os.environ["MLFLOW_TRACKING_USERNAME"] = os.environ.get("MLFLOW_ADMIN_USERNAME", "admin")
    os.environ["MLFLOW_TRACKING_PASSWORD"] = admin_password
    client = AuthServiceClient(tracking_uri)
    try:
        client.create_user(username, password)
        return "created"
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    client.update_user_password(username, password)
    return "password set"


if __name__ == "__main__":
    uri, user = sys.argv[1:3]
    print(f"MLflow user {user}: {main(uri, user)}")
