"""Properties of the gateway's JSON-RPC handling on ``POST /a2a/{agent}/``.

Whatever bytes a caller sends, the answer is a JSON-RPC object (never a 5xx,
never a traceback): the gateway's own errors carry the request's id when it
had a valid one (A2A's string or integer) and ``null`` otherwise; a batch (an array)
is refused as one invalid request, since A2A has no batches; a valid request,
notification or not, reaches the agent and its answer comes back.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.a2a import _parse
from gateway.errors import GatewayError, NotFound, jsonrpc_response
from tests.fuzz.openapi import scale
from tests.gateway.integration.mesh import Mesh, running_mesh
from tests.gateway.security.asgi import Result, call, http_scope

pytestmark = pytest.mark.anyio

SETTINGS = settings(
    max_examples=150 * scale(),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ids = st.one_of(
    st.none(),
    st.integers(min_value=-(2**53), max_value=2**53),
    # Lone surrogates included: JSON can spell them ("\ud800").
    st.text(st.characters(exclude_categories=()), max_size=20),
)
#: Not ids in A2A (JSON-RPC ids are strings or integers there).
not_ids = st.one_of(
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def mesh() -> AsyncIterator[Mesh]:
    async with running_mesh() as mesh:
        yield mesh


async def post(mesh: Mesh, path: str, body: bytes) -> Result:
    headers = [
        (b"host", b"gateway"),
        (b"content-type", b"application/json"),
        (b"a2a-version", b"1.0"),
        (b"content-length", str(len(body)).encode()),
    ]
    return await call(mesh.app, http_scope(path, "POST", headers), [body])


def answer_of(result: Result) -> dict[str, Any]:
    assert result.status < 500, (result.status, result.body[:300])
    content_type = result.headers.get(b"content-type", b"")
    assert content_type.startswith(b"application/json"), (content_type, result.body[:300])
    answer = json.loads(result.body)
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0", answer
    return answer


def dumps(value: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as its escape, as a client's JSON would.
    return json.dumps(value).encode()


@SETTINGS
@given(body=st.binary(max_size=200))
async def test_any_bytes_get_a_jsonrpc_answer(mesh: Mesh, body: bytes) -> None:
    answer = answer_of(await post(mesh, "/a2a/echo/", body))
    assert "result" in answer or "error" in answer


@SETTINGS
@given(value=json_values)
async def test_any_json_value_gets_a_jsonrpc_answer(mesh: Mesh, value: Any) -> None:
    answer = answer_of(await post(mesh, "/a2a/echo/", dumps(value)))
    if not isinstance(value, dict):
        assert answer["id"] is None
        assert answer["error"]["code"] == -32600  # a batch too: A2A has none


@SETTINGS
@given(request_id=ids, method=st.text(max_size=12), params=json_values)
async def test_a_gateway_error_echoes_a_valid_id(
    mesh: Mesh, request_id: Any, method: str, params: Any
) -> None:
    request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    answer = answer_of(await post(mesh, "/a2a/nobody/", dumps(request)))
    assert answer["error"]["code"] == NotFound().jsonrpc_code
    assert answer["id"] == request_id


@SETTINGS
@given(request_id=not_ids)
async def test_an_invalid_id_is_answered_with_null(mesh: Mesh, request_id: Any) -> None:
    request = {"jsonrpc": "2.0", "id": request_id, "method": "SendMessage", "params": {}}
    answer = answer_of(await post(mesh, "/a2a/nobody/", dumps(request)))
    assert answer["id"] is None


@SETTINGS
@given(request_id=ids, text=st.text(max_size=40))
async def test_a_message_reaches_the_agent_and_its_id_comes_back(
    mesh: Mesh, request_id: Any, text: str
) -> None:
    message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": text}]}
    message["metadata"] = {"skill": "echo"}
    request = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "SendMessage",
        "params": {"message": message},
    }
    answer = answer_of(await post(mesh, "/a2a/echo/", dumps(request)))
    assert answer["id"] == request_id


@SETTINGS
@given(method=st.sampled_from(["SendMessage", "GetTask", "CancelTask", "nope"]), params=json_values)
async def test_a_notification_is_forwarded_and_never_a_5xx(
    mesh: Mesh, method: str, params: Any
) -> None:
    request = {"jsonrpc": "2.0", "method": method, "params": params}
    result = await post(mesh, "/a2a/echo/", dumps(request))
    assert result.status < 500, result.body[:300]


async def test_deep_nesting_is_a_parse_error_not_a_500(mesh: Mesh) -> None:
    for body in (b"[" * 100_000, b'{"id":1,"params":' + b"[" * 100_000):
        answer = answer_of(await post(mesh, "/a2a/echo/", body))
        assert answer["error"]["code"] in (-32700, -32600)


# -- the parser and the renderer on their own --------------------------------


@settings(max_examples=500 * scale(), deadline=None, database=None)
@given(body=st.binary(max_size=64) | json_values.map(dumps) | st.text().map(str.encode))
def test_parse_agrees_with_json_loads(body: bytes) -> None:
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        expected = ValueError
    try:
        got = _parse(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return  # refused: the caller gets -32700
    if expected is not ValueError:
        assert got == expected or (
            isinstance(got, float) and math.isnan(got) and math.isnan(expected)
        )


@settings(max_examples=300 * scale(), deadline=None, database=None)
@given(request_id=ids, detail=st.text(max_size=20))
def test_every_error_renders_as_utf8_json(request_id: Any, detail: str) -> None:
    for error in (GatewayError(detail or None), NotFound(detail or None)):
        _, _, body = jsonrpc_response(error, request_id)
        answer = json.loads(body.decode("utf-8"))
        assert answer["id"] == request_id
