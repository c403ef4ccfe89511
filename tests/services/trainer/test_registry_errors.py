import requests
from mlflow.exceptions import MlflowException, RestException

from services.trainer.registry import PendingVersion, is_transient


def test_transient_errors_are_retried():
    down = MlflowException("API request to http://127.0.0.1:1/api failed with exception Connection refused")
    assert is_transient(down)
    assert is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}))
    assert is_transient(RestException({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}))
    assert is_transient(requests.exceptions.ConnectionError("refused"))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(PendingVersion("version 3 is still PENDING_REGISTRATION"))


def test_refused_requests_are_not_retried():
    assert not is_transient(RestException({"error_code": "BAD_REQUEST", "message": "duplicate"}))
    assert not is_transient(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}))
    assert not is_transient(RestException({"error_code": "PERMISSION_DENIED", "message": "no"}))
    assert not is_transient(ValueError("a bug"))
