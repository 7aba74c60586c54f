"""Schemathesis generates requests from the app's own OpenAPI document and sends them in-process (ASGI)
with a valid key; every built-in check runs (`--checks all`: no 500, answers match the document's
status codes, headers, content types and schemas, ...); a few dozen examples per operation. The run
never revokes the keys it uses itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.main import create_app
from tests.api_helpers import WORLD, World, make_service, make_world
from tests.case_helpers import build_lake

EXAMPLES_PER_OPERATION = 20

# Every built-in check, as `--checks all`. A schema-valid request may still get 422 where a rule
# cannot be written in JSON Schema: a USCC's check character, "enterprise_ids or features", a
# non-blank reason, an expiry within 366 days.
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]}}})

# Every operation of the document (building the app touches no files; nothing is started).
OPERATIONS = [
    (method.upper(), path) for path, ops in create_app().openapi()["paths"].items() for method in ops
]


REAL_IDS = [("enterprise_id", eid) for eid in WORLD] + [("sector", s) for s in ("wire_cable", "retail")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # Checks send many bad keys on purpose; throttling them is tested on its own. A small lake too,
    # so that the case endpoints (which need one) run their code, not a 503.
    lake = build_lake(tmp_path_factory.mktemp("schemathesis-lake"))
    return make_world(tmp_path_factory.mktemp("schemathesis"), audit_flush_seconds=0.5,
                      failed_auth_per_address="100000/minute", failed_auth_per_key="100000/minute",
                      lake_path=lake)


@pytest.fixture(scope="module")
def api_schema(world: World) -> Iterator[schemathesis.BaseSchema]:
    service = make_service(world)
    service.start()
    app = create_app(service=service, manage_service=False)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    finally:
        service.close()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, world: World, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    headers = world.headers("admin" if path.startswith("/v1/admin") else "credit_office")
    own_keys = {world.key_ids["admin"], world.key_ids["credit_office"]}

    # Random ids are almost never graded ones; mix in real ids and sectors so that the code behind
    # the 404 runs too (headers, query and body still vary freely).
    @given(case=operation.as_strategy(), real=st.sampled_from([None, *REAL_IDS]))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case, real: tuple[str, str] | None) -> None:
        if real is not None and case.path_parameters and real[0] in case.path_parameters:
            case.path_parameters[real[0]] = real[1]
        if method == "DELETE" and (case.path_parameters or {}).get("key_id") in own_keys:
            return  # revoking the key the run itself uses would only end the run
        case.call_and_validate(headers=headers)  # every built-in check

    check()


def test_the_openapi_document_describes_every_v1_endpoint() -> None:
    paths = {p for _, p in OPERATIONS}
    assert paths >= {
        "/v1/enterprises/{enterprise_id}",
        "/v1/enterprises/{enterprise_id}/explanation",
        "/v1/enterprises/{enterprise_id}/history",
        "/v1/enterprises/{enterprise_id}/override",
        "/v1/inspection-plan",
        "/v1/sectors/{sector}/enterprises",
        "/v1/score",
        "/v1/admin/reload",
        "/healthz",
        "/metrics",
    }
