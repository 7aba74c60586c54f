"""No input produces a 500: schemathesis generates requests from the app's own OpenAPI document and
sends them in-process (ASGI) with a valid credit-office key; a few dozen examples per operation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from api.main import create_app
from tests.api_helpers import WORLD, World, make_service, make_world
from tests.case_helpers import build_lake

EXAMPLES_PER_OPERATION = 30

# Every operation of the document (building the app touches no files; nothing is started).
OPERATIONS = [
    (method.upper(), path) for path, ops in create_app().openapi()["paths"].items() for method in ops
]


REAL_IDS = [("enterprise_id", eid) for eid in WORLD] + [("sector", s) for s in ("wire_cable", "retail")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # A small lake too, so that the case endpoints (which need one) run their code, not a 503.
    lake = build_lake(tmp_path_factory.mktemp("schemathesis-lake"))
    return make_world(tmp_path_factory.mktemp("schemathesis"), audit_flush_seconds=0.5, lake_path=lake)


@pytest.fixture(scope="module")
def api_schema(world: World) -> Iterator[schemathesis.BaseSchema]:
    service = make_service(world)
    service.start()
    app = create_app(service=service, manage_service=False)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        service.close()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, world: World, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    headers = world.headers("admin" if path.startswith("/v1/admin") else "credit_office")

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
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

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
