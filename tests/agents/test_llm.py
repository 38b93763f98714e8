"""The optional LLM path: the chat client, the planner and summarizer with it, and the CLI.

The model is a real OpenAI-compatible HTTP server on a loopback socket
(:mod:`tests.agents.llm_server`) answering what each test scripts. Without an
LLM configured nothing here runs: the other tests cover the deterministic path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from agents.errors import ERROR_TABLE, LlmUnavailable
from agents.llm import ChatClient, LlmSettings
from agents.planner import UnusablePlan, parse_parts, plan
from agents.planner import agent as planner
from agents.planner.llm_split import MAX_LLM_QUESTION_CHARS, MAX_PARTS, SYSTEM_PROMPT
from agents.runtime import reply_from_parts
from agents.sdk import IncomingMessage, LanguageModel, Reply, SkillError, ToolResult
from agents.summarizer import agent as summarizer
from meshgate.commands.agent import LLM_API_KEY_ENV, agent, llm_settings
from tests.agents.llm_server import MODEL, FakeLlm, running_llm
from tests.agents.mesh import running_agent
from tests.agents.runtime.support import a2a_client, final_task, request
from tests.support.external import ROOT
from tests.support.live import free_port
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

KEY = "sk-test-5ecret-key-0123456789"
PROSE = (
    "Context managers pair setup with cleanup. The with statement calls a context "
    "manager's enter method before its block and its exit method after it. Exit runs "
    "even when the block raises, so files are closed and locks released. Writing a "
    "context manager takes a class with two methods or one generator function. The "
    "contextlib module supplies the decorator for the generator form. Context managers "
    "make cleanup code reusable across many with statements."
)


# -- a SkillContext with a model ---------------------------------------------------


@dataclass
class AnsweringPeers:
    """Peers that answer every delegation at once, and remember what they were asked."""

    asked: list[tuple[str, str | None]] = field(default_factory=list)

    async def ask(
        self, text: str, *, skill: str | None = None, agent: str | None = None, context_id: str = ""
    ) -> Reply:
        self.asked.append((text, skill))
        return Reply(f"{skill} says: {text}")


class NoTools:
    async def call(self, service: str, tool: str, arguments: Any) -> ToolResult:
        raise SkillError("no tools here")


@dataclass
class LlmContext:
    """A SkillContext outside the runtime, with ``llm`` set; progress kept in a list."""

    llm: LanguageModel | None
    peers: AnsweringPeers = field(default_factory=AnsweringPeers)
    tools: NoTools = field(default_factory=NoTools)
    agent_name: str = "test"
    task_id: str = "task-1"
    context_id: str = "ctx-1"
    said: list[str] = field(default_factory=list)

    async def progress(self, text: str) -> None:
        self.said.append(text)


@contextlib.asynccontextmanager
async def model(
    fake: FakeLlm, *, api_key: str | None = KEY, **settings: Any
) -> AsyncIterator[ChatClient]:
    """A ChatClient for ``fake`` served on loopback."""
    async with running_llm(fake) as base_url, httpx.AsyncClient() as http:
        yield ChatClient(LlmSettings(base_url, MODEL, api_key, **settings), http)


def down_model(http: httpx.AsyncClient) -> ChatClient:
    """A ChatClient for a port nothing listens on."""
    return ChatClient(LlmSettings(f"http://127.0.0.1:{free_port()}/v1", MODEL, KEY), http)


async def run(skill: Any, text: str, ctx: LlmContext, **metadata: Any) -> Reply:
    reply = await skill.fn(IncomingMessage(text=text, metadata=metadata), ctx)
    assert isinstance(reply, Reply)
    return reply


# -- settings and the client ---------------------------------------------------------


def test_settings_check_the_endpoint_and_hide_the_key() -> None:
    settings = LlmSettings("http://127.0.0.1:8000/v1/", MODEL, KEY)
    assert settings.endpoint == "http://127.0.0.1:8000/v1/chat/completions"
    assert KEY not in repr(settings)
    assert KEY not in repr(ChatClient(settings, httpx.AsyncClient()))
    for base_url, message in [
        ("ftp://host/v1", "http(s) URL"),
        ("http:///v1", "http(s) URL"),
        ("http://host/v1?x=1", "no query"),
        ("http://user:pw@host/v1", "credentials"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            LlmSettings(base_url, MODEL)
    with pytest.raises(ValueError, match="model"):
        LlmSettings("http://host/v1", " ")
    with pytest.raises(ValueError, match="API key"):
        LlmSettings("http://host/v1", MODEL, "")
    with pytest.raises(ValueError, match="timeout"):
        LlmSettings("http://host/v1", MODEL, timeout=0)
    with pytest.raises(ValueError, match="max_tokens"):
        LlmSettings("http://host/v1", MODEL, max_tokens=0)


async def test_the_client_speaks_chat_completions_with_a_bearer_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    fake = FakeLlm(content="a reply", api_key=KEY)
    async with model(fake, max_tokens=64) as client:
        assert await client.complete("be brief", "hello") == "a reply"
    [sent] = fake.requests
    assert sent.authorization == f"Bearer {KEY}"
    assert sent.body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
        ],
        "max_tokens": 64,
        "stream": False,
        "temperature": 0.0,
    }
    assert "chat/completions" in caplog.text  # the exchange was logged...
    assert KEY not in caplog.text  # ...without the key


async def test_without_a_key_no_authorization_is_sent() -> None:
    fake = FakeLlm(content="ok")
    async with model(fake, api_key=None, temperature=None) as client:
        assert await client.complete("s", "u") == "ok"
    assert fake.requests[0].authorization is None
    assert "temperature" not in fake.requests[0].body


@pytest.mark.parametrize(
    ("fake", "message"),
    [
        (FakeLlm(api_key="sk-another-key"), "refused the API key (401)"),
        (FakeLlm(status=404), "404: check the base URL and the model"),
        (FakeLlm(status=429), "rate limiting (429)"),
        (FakeLlm(status=503), "answered 503"),
        (FakeLlm(raw=b"<html>busy</html>"), "other than JSON"),
        (FakeLlm(raw=b'{"choices": []}'), "no message text"),
        (FakeLlm(raw=b'{"choices": [{"message": {"content": null}}]}'), "no message text"),
    ],
)
async def test_failures_are_llm_unavailable_and_never_quote_the_key(
    fake: FakeLlm, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with model(fake) as client:
        with pytest.raises(LlmUnavailable, match=re.escape(message)) as caught:
            await client.complete("s", "u")
    assert fake.requests[0].authorization == f"Bearer {KEY}"
    assert KEY not in str(caught.value)
    assert KEY not in caplog.text
    assert isinstance(caught.value, SkillError)
    assert caught.value.code == "llm-unavailable"
    assert ERROR_TABLE["llm-unavailable"] == (caught.value.status, caught.value.jsonrpc_code)


async def test_an_unreachable_or_slow_model_is_llm_unavailable() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(LlmUnavailable, match=r"cannot reach the LLM endpoint \(ConnectError\)"):
            await down_model(http).complete("s", "u")
    fake = FakeLlm(content="late", hold=anyio.Event())
    async with model(fake, timeout=0.2) as client:
        try:
            with pytest.raises(LlmUnavailable, match=r"did not answer within 0\.2s"):
                await client.complete("s", "u")
        finally:
            assert fake.hold is not None
            fake.hold.set()  # let the held request end before the server stops


# -- the planner -----------------------------------------------------------------------

#: One part by rules (no question word after "and"); two by the model.
QUESTION = "What is a generator and 6*7?"
LLM_PARTS = ["What is a Python generator?", "What is 6*7?"]


async def test_the_planner_delegates_the_llms_parts() -> None:
    assert [s.text for s in plan(QUESTION)] == [QUESTION.rstrip("?") + "?"]  # rules: one part
    fake = FakeLlm(content=json.dumps(LLM_PARTS))
    async with model(fake) as client:
        ctx = LlmContext(client)
        reply = await run(planner.skills["answer"], QUESTION, ctx)
    [sent] = fake.requests
    assert (sent.system, sent.user) == (SYSTEM_PROMPT, QUESTION)
    assert ctx.peers.asked == [(LLM_PARTS[0], "research"), (LLM_PARTS[1], "calculate")]
    assert ctx.said == [
        "asking the LLM to split the question",
        f"step 1/2: asking a research agent: {LLM_PARTS[0]}",
        f"step 2/2: asking a calculate agent: {LLM_PARTS[1]}",
    ]
    assert reply.data is not None
    assert reply.data["method"] == "llm"
    assert "fallback" not in reply.data
    assert [(s["question"], s["skill"]) for s in reply.data["steps"]] == [
        (LLM_PARTS[0], "research"),
        (LLM_PARTS[1], "calculate"),
    ]
    assert reply.text.startswith(f"Q: {LLM_PARTS[0]}\nA: research says: {LLM_PARTS[0]}")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("Sure! The parts are: generators, and 6*7.", "the LLM's answer is not JSON"),
        ('{"parts": ["a question"]}', "the LLM's answer is an object, not a list"),
        ("[]", "the LLM's list is empty"),
        ('["What is a generator?", 42]', "a part in the LLM's list is a number, not a string"),
        ('["What is a generator?", null]', "a part in the LLM's list is null, not a string"),
        ('["What is a generator?", "  "]', "a part in the LLM's list is blank"),
        (json.dumps(["q?"] * (MAX_PARTS + 1)), f"has {MAX_PARTS + 1} parts, more than {MAX_PARTS}"),
        (json.dumps(["x" * 1_001]), "longer than 1000 characters"),
        ('["What is\\u0000 a generator?"]', "control characters"),
        ('["What is a generator?"] and more', "not JSON"),
    ],
)
async def test_unusable_llm_output_falls_back_to_the_rules(content: str, reason: str) -> None:
    fake = FakeLlm(content=content)
    async with model(fake) as client:
        ctx = LlmContext(client)
        reply = await run(planner.skills["answer"], QUESTION, ctx)
    assert len(fake.requests) == 1
    assert reply.data is not None
    assert reply.data["method"] == "rules"
    assert reason in reply.data["fallback"]
    assert [(s["question"], s["skill"]) for s in reply.data["steps"]] == [
        (s.text, s.skill) for s in plan(QUESTION)
    ]
    assert ctx.said[0] == "asking the LLM to split the question"
    assert ctx.said[1] == f"{reply.data['fallback']}; splitting the question by rules instead"


async def test_a_model_that_is_down_or_refuses_falls_back_to_the_rules(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        ctx = LlmContext(down_model(http))
        reply = await run(planner.skills["answer"], QUESTION, ctx)
    assert reply.data is not None
    assert reply.data["method"] == "rules"
    assert reply.data["fallback"] == "cannot reach the LLM endpoint (ConnectError)"
    assert ctx.peers.asked == [(s.text, s.skill) for s in plan(QUESTION)]

    fake = FakeLlm(api_key="sk-the-right-one")  # ours is refused, and quoted in the 401 body
    async with model(fake) as client:
        refused = await run(planner.skills["answer"], QUESTION, LlmContext(client))
    assert refused.data is not None
    assert refused.data["fallback"] == "the LLM endpoint refused the API key (401)"
    assert "refused the API key (401); splitting by rules" in caplog.text  # our logs, captured
    assert KEY not in caplog.text


async def test_the_planner_survives_a_model_outside_the_contract() -> None:
    class Broken:
        async def complete(self, system: str, user: str) -> str:
            raise RuntimeError("internal detail")  # its text must not reach the reply

    ctx = LlmContext(Broken())
    reply = await run(planner.skills["answer"], QUESTION, ctx)
    assert reply.data is not None
    assert reply.data["fallback"] == "the LLM failed (RuntimeError)"
    assert not any("internal detail" in said for said in ctx.said)


async def test_prose_and_long_questions_are_not_sent_to_the_model() -> None:
    fake = FakeLlm(content=json.dumps(LLM_PARTS))
    async with model(fake) as client:
        ctx = LlmContext(client)
        prose = await run(planner.skills["answer"], "Summarize: " + PROSE, ctx)
        long = await run(planner.skills["answer"], "What is 2+2? " * 400, ctx)
    assert fake.requests == []
    assert prose.data is not None
    assert prose.data["method"] == "rules"
    assert "fallback" not in prose.data
    assert ctx.peers.asked[0][1] == "summarize"
    assert len("What is 2+2? " * 400) > MAX_LLM_QUESTION_CHARS
    assert long.data is not None
    assert "too long for the LLM" in long.data["fallback"]


async def test_without_a_model_the_reply_says_nothing_of_a_method() -> None:
    ctx = LlmContext(None)
    reply = await run(planner.skills["answer"], QUESTION, ctx)
    assert reply.data is not None
    assert "method" not in reply.data
    assert not any("LLM" in said for said in ctx.said)


def test_parse_parts_accepts_exactly_a_list_of_questions() -> None:
    assert parse_parts('["a?", "b?"]') == ["a?", "b?"]
    assert parse_parts('```json\n["a?",\n "b?"]\n```') == ["a?", "b?"]  # one fence is fine
    assert parse_parts('["What  is\\n a?", "what is a?"]') == ["What is a?"]  # spaces, repeats
    with pytest.raises(UnusablePlan, match="not JSON"):
        parse_parts('```\n["a?"]\n``` and then ```["b?"]```')


# -- the summarizer --------------------------------------------------------------------

ABSTRACT = "Context managers run cleanup after a with block, even on errors."


async def test_the_summarizer_uses_the_models_summary() -> None:
    fake = FakeLlm(content=f"  {ABSTRACT}\n")
    async with model(fake) as client:
        ctx = LlmContext(client)
        reply = await run(summarizer.skills["summarize"], "Summarize: " + PROSE, ctx)
        one = await run(summarizer.skills["summarize"], PROSE, ctx, sentences=1)
    assert reply == Reply(ABSTRACT, data={"method": "llm", "sentences": 1, "of": 6})
    assert one.text == ABSTRACT
    first, second = fake.requests
    assert first.user == PROSE  # without the "Summarize:" instruction
    assert "at most 2 sentences" in first.system  # a third of 6, as the extractive default
    assert "one sentence" in second.system
    assert ctx.said == ["asking the LLM for a summary"] * 2


@pytest.mark.parametrize(
    ("fake", "reason"),
    [
        (FakeLlm(content=" \n "), "the LLM's summary is empty"),
        (FakeLlm(content=PROSE + " And more."), "the LLM's summary is longer than the text"),
        (FakeLlm(status=500), "the LLM endpoint answered 500"),
    ],
)
async def test_the_summarizer_falls_back_to_extractive(fake: FakeLlm, reason: str) -> None:
    async with model(fake) as client:
        ctx = LlmContext(client)
        reply = await run(summarizer.skills["summarize"], "Summarize: " + PROSE, ctx)
    assert reply.data == {
        "method": "extractive",
        "fallback": reason,
        "sentences": 2,
        "of": 6,
        "kept": [0, 1],
    }
    assert ctx.said == [
        "asking the LLM for a summary",
        f"{reason}; keeping the text's own sentences instead",
    ]


async def test_the_summarizer_falls_back_when_the_model_is_down() -> None:
    async with httpx.AsyncClient() as http:
        reply = await run(summarizer.skills["summarize"], PROSE, LlmContext(down_model(http)))
    assert reply.data is not None
    assert reply.data["method"] == "extractive"
    assert reply.data["fallback"] == "cannot reach the LLM endpoint (ConnectError)"


async def test_without_a_model_the_summary_is_extractive_as_ever() -> None:
    reply = await run(summarizer.skills["summarize"], PROSE, LlmContext(None))
    assert reply.data == {"sentences": 2, "of": 6, "kept": [0, 1]}


# -- the runtime and the CLI --------------------------------------------------------------


async def test_the_runtime_gives_skills_the_model() -> None:
    fake = FakeLlm(content=ABSTRACT)
    async with (
        model(fake) as client,
        running_agent(summarizer, llm=client) as url,
        httpx.AsyncClient(timeout=10) as http,
    ):
        a2a = await a2a_client(http, url)
        task = await final_task(a2a, request("Summarize: " + PROSE, skill="summarize"))
    reply = reply_from_parts(task.artifacts[0].parts)
    assert reply.text == ABSTRACT
    assert reply.data == {"method": "llm", "sentences": 1, "of": 6}


def test_llm_settings_from_the_options() -> None:
    assert llm_settings(None, None, KEY) is None  # a key alone configures nothing
    settings = llm_settings("http://127.0.0.1:1/v1", MODEL, "")
    assert settings == LlmSettings("http://127.0.0.1:1/v1", MODEL, None)
    with pytest.raises(ValueError, match="needs --llm-base-url"):
        llm_settings(None, MODEL, None)
    with pytest.raises(ValueError, match="needs --llm-model"):
        llm_settings("http://127.0.0.1:1/v1", None, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MESHGATE_LLM_MODEL": MODEL}, "--llm-model needs --llm-base-url"),
        ({"MESHGATE_LLM_BASE_URL": "http://127.0.0.1:1/v1"}, "--llm-base-url needs --llm-model"),
        (
            {"MESHGATE_LLM_BASE_URL": "ftp://127.0.0.1/v1", "MESHGATE_LLM_MODEL": MODEL},
            "must be an http(s) URL",
        ),
    ],
)
def test_the_cli_reads_the_llm_environment(env: dict[str, str], message: str) -> None:
    result = CliRunner().invoke(agent, ["summarizer"], env=env)
    assert result.exit_code == 2
    assert message in result.output


def test_the_key_is_no_flag() -> None:
    result = CliRunner().invoke(agent, ["summarizer", "--llm-api-key", KEY])
    assert result.exit_code == 2
    assert "No such option" in result.output


@pytest.mark.e2e
async def test_a_real_agent_process_uses_the_model_from_its_environment(tmp_path: Path) -> None:
    fake = FakeLlm(content=ABSTRACT, api_key=KEY)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    code = "from meshgate.commands.agent import agent; agent()"
    command = [sys.executable, "-c", code, "summarizer", "--port", str(port)]
    command += ["--task-store", "memory", "--grace", "1"]
    log = tmp_path / "agent.log"
    async with running_llm(fake) as base_url:
        env = {
            **os.environ,
            "OTEL_INSTRUMENTATION_A2A_SDK_ENABLED": "false",
            "MESHGATE_LLM_BASE_URL": base_url,
            "MESHGATE_LLM_MODEL": MODEL,
            LLM_API_KEY_ENV: KEY,
        }
        with log.open("wb") as output:
            async with (
                await anyio.open_process(
                    command, cwd=ROOT, env=env, stdout=output, stderr=output
                ) as proc,
                httpx.AsyncClient(timeout=10) as http,
            ):
                try:

                    async def ready() -> int:
                        if proc.returncode is not None:
                            raise AssertionError(f"the agent exited with {proc.returncode}")
                        try:
                            return (await http.get(f"{url}/readyz")).status_code
                        except httpx.TransportError:
                            return 0

                    await eventually(ready, lambda status: status == 200, within=20)
                    a2a = await a2a_client(http, url)
                    task = await final_task(a2a, request("Summarize: " + PROSE, skill="summarize"))
                    proc.terminate()
                    with anyio.fail_after(15):
                        assert await proc.wait() == 0
                finally:
                    if proc.returncode is None:
                        proc.kill()  # by the PID we started
                        await proc.wait()
    reply = reply_from_parts(task.artifacts[0].parts)
    assert reply.text == ABSTRACT
    assert reply.data == {"method": "llm", "sentences": 1, "of": 6}
    [sent] = fake.requests
    assert sent.authorization == f"Bearer {KEY}"
    assert sent.body["model"] == MODEL
    written = log.read_text()
    assert f"LLM: {MODEL} at {base_url} (with an API key)" in written
    assert KEY not in written
