"""``POST /alerts/{ref}/silence`` (the dashboard's "silence" action): an admin of every tenant silences an
alert's rule and key, its incident shows as silenced; anyone else is refused."""
from __future__ import annotations

from logwarden.alerting import history
from logwarden.alerting.inhibit.silences import SilenceStore
from tests.alerting.conftest import anomaly
from tests.alerting.test_http_auth import A_ADMIN, A_READ, OPS, api, call  # noqa: F401 - the fixture

BODY = {"duration": "2h", "reason": "deploy in progress", "by": "alice"}


def test_an_operator_silences_an_alert_and_its_incident(api):  # noqa: F811
    installers, service = api
    alert = history.list_alerts(service.store, tenant="team-a")[0]
    [(status, out)] = call(installers, [("POST", f"/alerts/{alert['id']}/silence", OPS, BODY)])
    assert status == 200 and out["silenced"] == [alert["id"]]
    assert out["silence"]["rule"] == "error_spike" and out["silence"]["key"] == "payment"
    assert out["alert"]["silenced_by"] == out["silence"]["id"]
    [silence] = SilenceStore(service.store).list()
    assert silence.created_by == "alice" and 7190 < silence.ends_at - silence.created_at <= 7200
    service.dispatch([anomaly("error_spike", key="payment", severity="HIGH", tenant="team-a", minute=7)])
    newest = history.list_alerts(service.store, tenant="team-a")[0]
    assert newest["id"] != alert["id"] and newest["silenced_by"] == silence.id  # the silence holds on


def test_others_are_refused_and_bad_requests_answered(api):  # noqa: F811
    installers, service = api
    alert = history.list_alerts(service.store, tenant="team-a")[0]
    path = f"/alerts/{alert['id']}/silence"
    answers = call(installers, [("POST", path, A_READ, BODY),  # a reader
                                ("POST", path, A_ADMIN, BODY),  # an admin of one tenant: a silence is for all
                                ("POST", "/alerts/99999/silence", OPS, BODY),
                                ("POST", path, OPS, {**BODY, "duration": "soon"}),
                                ("POST", path, OPS, {**BODY, "reason": " "})])
    assert [status for status, _ in answers] == [403, 403, 404, 400, 400]
    assert SilenceStore(service.store).list() == []
    assert history.get_alert(service.store, alert["id"])["silenced_by"] is None
