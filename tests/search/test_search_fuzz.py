"""API fuzzing: schemathesis generates valid and invalid requests from the service's own OpenAPI spec; no
answer may be a 5xx, and every answer must be a documented status with a body matching the spec. Every
operation (multipart uploads and HEAD included) is fuzzed alone, then in sequences that follow the spec's links
(a search's first result → its item, thumbnail and media; an item → its thumbnail and media).

The schema is built from a fixture (the index is a fixture), and each operation's strategy is driven with
hypothesis directly: schemathesis' lazy `from_fixture` loader does not run under pytest 9.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

import omnibind  # noqa: E402
from omnibind.search import Searcher, SearchIndex  # noqa: E402
from omnibind.search.service import create_app  # noqa: E402

# positive_data_acceptance is left out on purpose: random bytes are schema-valid for a binary `file` field but
# are not a picture or a sound, and the service rightly answers them 4xx.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
OPERATIONS = [
    ("POST", "/search"),
    ("GET", "/items/{item_id}"),
    ("GET", "/items/{item_id}/similar"),
    ("GET", "/items/{item_id}/thumbnail"),
    ("GET", "/items/{item_id}/media"),
    ("HEAD", "/items/{item_id}/media"),
    ("GET", "/health"),
]
EXAMPLES = {"POST": 150, "GET": 40, "HEAD": 20}
STATEFUL_EXAMPLES = 25
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CASES = [(method, path, mode) for method, path in OPERATIONS for mode in MODES
         if not (path == "/health" and mode == GenerationMode.NEGATIVE)]  # /health takes no input to get wrong


@pytest.fixture(scope="module")
def api_schema(built_index):
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(searcher, max_upload_bytes=100_000))


def empty_multipart_list(case) -> bool:
    """An "invalid" empty list in a multipart field is sent as no field at all, so the request on the wire is
    valid and rightly answered 200; schemathesis cannot know, so such cases are skipped."""
    return case.media_type == "multipart/form-data" and isinstance(case.body, dict) and \
        any(value == [] for value in case.body.values())


def test_every_operation_is_fuzzed(api_schema) -> None:
    found = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert found == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_no_server_errors_and_answers_match_the_spec(api_schema, method: str, path: str,
                                                     mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[method], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        assume(not empty_multipart_list(case))
        response = case.call()
        case.validate_response(response, checks=CHECKS)

    run()


def test_linked_sequences_have_no_server_errors(api_schema) -> None:
    """Stateful runs: schemathesis follows the OpenAPI links between operations (search → item → media)."""
    from schemathesis.specs.openapi.stateful import collect_transitions

    transitions = collect_transitions(list(op.ok() for op in api_schema.get_all_operations()))
    outgoing = {label: sorted(link.target.label for link in found.outgoing)
                for label, found in transitions.operations.items() if found.outgoing}
    on_items = {"GET /items/{item_id}", "GET /items/{item_id}/thumbnail", "GET /items/{item_id}/media",
                "HEAD /items/{item_id}/media"}
    assert on_items <= set(outgoing["POST /search"])
    assert "HEAD /items/{item_id}/media" in outgoing["GET /items/{item_id}"]

    calls: list[str] = []

    class Checked(api_schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            calls.append(f"{case.method.upper()} {case.operation.path} {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     content_type_conformance, response_schema_conformance])

    Checked.run(settings=settings(max_examples=STATEFUL_EXAMPLES, deadline=None, database=None, derandomize=True,
                                  stateful_step_count=6, suppress_health_check=list(HealthCheck)))
    followed = {call.rsplit(" ", 1)[0] for call in calls if call.endswith(" 200") or call.endswith(" 206")}
    assert {"POST /search", "GET /items/{item_id}", "GET /items/{item_id}/media"} <= followed, sorted(set(calls))
