"""API fuzzing: schemathesis generates valid and invalid requests from the service's own OpenAPI spec; no
answer may be a 5xx, and every answer must be a documented status with a body matching the spec. Every
operation (multipart uploads and HEAD included) is fuzzed alone, then in sequences that follow the spec's links
(a search's first result → its item, thumbnail and media; an item → its thumbnail and media). The caption
operations are fuzzed twice: on an index without a decoder (always 409) and on one built with a mixed checkpoint,
whose service holds a generator.

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
    ("POST", "/caption"),
    ("GET", "/items/{item_id}/caption"),
]
CAPTION_OPERATIONS = [("POST", "/caption"), ("GET", "/items/{item_id}/caption"), ("GET", "/health")]
EXAMPLES = {"POST": 150, "GET": 40, "HEAD": 20}
STATEFUL_EXAMPLES = 25
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CASES = [(method, path, mode) for method, path in OPERATIONS for mode in MODES
         if not (path == "/health" and mode == GenerationMode.NEGATIVE)]  # /health takes no input to get wrong
CAPTION_CASES = [case for case in CASES if case[:2] in CAPTION_OPERATIONS]


@pytest.fixture(scope="module")
def api_schema(built_index):
    searcher = Searcher(SearchIndex(built_index.index), omnibind.load(built_index.model))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(searcher, max_upload_bytes=100_000))


@pytest.fixture(scope="module")
def caption_schema(caption_index):
    searcher = Searcher(SearchIndex(caption_index.index), omnibind.load(caption_index.model, kind="embedding"))
    app = create_app(searcher, max_upload_bytes=100_000, generator=omnibind.load(caption_index.model,
                                                                                 kind="generator"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def empty_multipart_list(case) -> bool:
    """An "invalid" empty list in a multipart field is sent as no field at all, so the request on the wire is
    valid and rightly answered 200; schemathesis cannot know, so such cases are skipped."""
    return case.media_type == "multipart/form-data" and isinstance(case.body, dict) and \
        any(value == [] for value in case.body.values())


def text_field_not_a_string(case) -> bool:
    """An "invalid" non-string in a multipart text field (POST /caption's prompt: null, 0, false) is sent as its text
    ("null"), which is a valid prompt on the wire, so such cases are skipped too."""
    return case.media_type == "multipart/form-data" and isinstance(case.body, dict) and \
        "prompt" in case.body and not isinstance(case.body["prompt"], str)


def test_every_operation_is_fuzzed(api_schema) -> None:
    found = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert found == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_no_server_errors_and_answers_match_the_spec(api_schema, method: str, path: str,
                                                     mode: GenerationMode) -> None:
    fuzz(api_schema, method, path, mode)


@pytest.mark.parametrize(("method", "path", "mode"), CAPTION_CASES,
                         ids=[f"{m} {p} {g.value}" for m, p, g in CAPTION_CASES])
def test_captions_have_no_server_errors_with_a_generator(caption_schema, method: str, path: str,
                                                         mode: GenerationMode) -> None:
    fuzz(caption_schema, method, path, mode)


def fuzz(schema, method: str, path: str, mode: GenerationMode) -> None:
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[method], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        assume(not empty_multipart_list(case) and not text_field_not_a_string(case))
        response = case.call()
        case.validate_response(response, checks=CHECKS)

    run()


def test_linked_sequences_have_no_server_errors(api_schema) -> None:
    """Stateful runs: schemathesis follows the OpenAPI links between operations (search → item → media)."""
    outgoing = links(api_schema)
    on_items = {"GET /items/{item_id}", "GET /items/{item_id}/thumbnail", "GET /items/{item_id}/media",
                "HEAD /items/{item_id}/media", "GET /items/{item_id}/caption"}
    assert on_items <= set(outgoing["POST /search"])
    assert "HEAD /items/{item_id}/media" in outgoing["GET /items/{item_id}"]
    followed = run_stateful(api_schema)
    assert {"POST /search", "GET /items/{item_id}", "GET /items/{item_id}/media"} <= followed


def test_linked_sequences_reach_captions_with_a_generator(caption_schema) -> None:
    assert "GET /items/{item_id}/caption" in links(caption_schema)["GET /items/{item_id}"]
    assert {"POST /search", "GET /items/{item_id}/caption"} <= run_stateful(caption_schema)


def links(schema) -> dict[str, list[str]]:
    """The operations each operation's links lead to, by label."""
    from schemathesis.specs.openapi.stateful import collect_transitions

    transitions = collect_transitions(list(op.ok() for op in schema.get_all_operations()))
    return {label: sorted(link.target.label for link in found.outgoing)
            for label, found in transitions.operations.items() if found.outgoing}


def run_stateful(schema) -> set[str]:
    """Run schemathesis' state machine over the spec's links; the operations that answered 200 or 206."""
    calls: list[str] = []

    class Checked(schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            calls.append(f"{case.method.upper()} {case.operation.path} {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     content_type_conformance, response_schema_conformance])

    Checked.run(settings=settings(max_examples=STATEFUL_EXAMPLES, deadline=None, database=None, derandomize=True,
                                  stateful_step_count=6, suppress_health_check=list(HealthCheck)))
    return {call.rsplit(" ", 1)[0] for call in calls if call.endswith(" 200") or call.endswith(" 206")}
