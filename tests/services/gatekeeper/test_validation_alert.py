"""Three candidates in a row failing infra validation raise one critical alert, with the reasons."""

from __future__ import annotations

from services.gatekeeper.gatekeeper import Gatekeeper
from tests.services.gatekeeper.test_handlers import settings


def test_three_failures_in_a_row_alert_once_with_their_reasons(tmp_path):
    gk = Gatekeeper(settings(tmp_path))
    gk._validation_outcome("1", "infra validation: outputs differ by 2e-2")
    gk._validation_outcome("2", "infra validation: head did not load")
    assert gk.alerts == []
    gk._validation_outcome("2", "infra validation: head did not load")  # redelivered: not counted again
    assert gk.alerts == []
    gk._validation_outcome("3", "infra validation: 2 of 8 known images get another decision")
    [alert] = gk.alerts
    assert alert.alert == "validation_failing" and alert.severity == "critical"
    assert alert.details["versions"] == ["1", "2", "3"]
    assert "known images" in alert.message and "3 candidates in a row" in alert.message


def test_a_pass_resets_the_streak(tmp_path):
    gk = Gatekeeper(settings(tmp_path))
    gk._validation_outcome("1", "infra validation: x")
    gk._validation_outcome("2", "infra validation: x")
    gk._validation_outcome("3", None)
    gk._validation_outcome("4", "infra validation: x")
    gk._validation_outcome("5", "infra validation: x")
    assert gk.alerts == []
    # the streak survives a restart of the gatekeeper (it lives in the state directory)
    again = Gatekeeper(settings(tmp_path))
    again._validation_outcome("6", "infra validation: x")
    assert len(again.alerts) == 1 and again.alerts[0].details["versions"] == ["4", "5", "6"]
