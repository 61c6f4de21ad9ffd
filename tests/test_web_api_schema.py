"""The status API keeps the promises of its published OpenAPI document: schemathesis reads
the document from the running server and sends generated requests (as an authenticated
sender); every answer must be documented, well-formed and match its schema."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.web import SENDER_A, Console

pytestmark = pytest.mark.integration



def test_the_document_is_served_and_names_every_route(web: Console) -> None:
    document = httpx.get(f"{web.base}/api/v1/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/meldinger", "/meldinger/{msgId}", "/regninger", "/regninger/{guid}",
    }
    assert document["servers"] == [{"url": "/api/v1"}]


def test_status_api_matches_its_openapi_document(web: Console) -> None:
    schema = schemathesis.openapi.from_url(f"{web.base}/api/v1/openapi.json")
    token = web.issuer.token(SENDER_A, lifetime=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    base_url = f"{web.base}/api/v1"

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy())
    def check(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        case.call_and_validate(base_url=base_url, headers=headers)

    check()


def test_documented_examples_of_real_claims_validate(web: Console) -> None:
    # Generated ids almost never exist: also walk the real ones, so the 200 answers with bills,
    # merknader and payouts are checked against the schema too.
    schema = schemathesis.openapi.from_url(f"{web.base}/api/v1/openapi.json")
    token = web.issuer.token(SENDER_A, lifetime=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    base_url = f"{web.base}/api/v1"
    calls: list[tuple[str, str, dict[str, str]]] = [
        ("/meldinger", "GET", {}),
        ("/regninger", "GET", {}),
    ]
    calls += [("/meldinger/{msgId}", "GET", {"msgId": m}) for m in web.seeded.msg_ids_a]
    calls += [("/regninger/{guid}", "GET", {"guid": g}) for g in web.seeded.guids_a]
    for path, method, params in calls:
        operation = schema[path][method]
        case = operation.Case(path_parameters=params)
        response = case.call_and_validate(base_url=base_url, headers=headers)
        assert response.status_code == 200, (path, params)
