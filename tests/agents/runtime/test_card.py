"""The Agent Card built from an Agent, as served and as registered."""

from __future__ import annotations

import pytest
from a2a.client import A2ACardResolver
from a2a.utils.proto_utils import validate_proto_required_fields

from agents.runtime import build_agent_app, build_agent_card, card_to_json
from agents.sdk import Agent, IncomingMessage, SkillContext
from registry.validation import parse_agent_card
from tests.agents.runtime.support import LOCAL_URL, in_process, make_agent, make_config

pytestmark = pytest.mark.anyio


async def test_the_served_card_describes_the_agent() -> None:
    app = build_agent_app(make_agent(), make_config())
    async with in_process(app) as http:
        response = await http.get("/.well-known/agent-card.json")
        assert response.status_code == 200
        assert response.headers["etag"].startswith('W/"')
        served = response.json()
        card = await A2ACardResolver(http, LOCAL_URL).get_agent_card()
    validate_proto_required_fields(card)
    assert card.name == "tester"
    assert card.description == "An agent the runtime tests drive."
    assert card.version == "1.2.3"
    assert card.capabilities.streaming is True
    assert card.capabilities.push_notifications is False
    assert list(card.default_input_modes) == ["text/plain", "application/json"]
    assert list(card.default_output_modes) == ["text/plain", "application/json"]
    interfaces = [
        (i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces
    ]
    assert interfaces == [("JSONRPC", LOCAL_URL + "/", "1.0"), ("HTTP+JSON", LOCAL_URL, "1.0")]
    skills = {s.id: s for s in card.skills}
    assert list(skills) == ["echo", "slow", "fail", "crash", "ask"]
    assert skills["echo"].name == "Echo"
    assert skills["echo"].description == "Answer with the text, its length and a citation."
    assert list(skills["echo"].tags) == ["echo"]
    assert list(skills["echo"].examples) == ["hello"]
    assert list(skills["slow"].tags) == ["test"]  # none of its own: the agent's
    # What the registry stores is the strict 1.0 form (the served card adds 0.3 fields).
    registered = card_to_json(app.state.card)
    parse_agent_card(registered)
    assert "url" not in registered
    assert {k: v for k, v in served.items() if k in registered} == registered


def test_a_skill_without_tags_anywhere_is_tagged_with_its_id() -> None:
    agent = Agent("bare", "No tags at all.")

    @agent.skill()
    async def only(message: IncomingMessage, ctx: SkillContext) -> str:
        return ""

    card = build_agent_card(agent, "http://127.0.0.1:9/")
    assert list(card.skills[0].tags) == ["only"]
    assert card.supported_interfaces[0].url == "http://127.0.0.1:9/"
    assert card.supported_interfaces[1].url == "http://127.0.0.1:9"


def test_an_agent_without_skills_cannot_be_served() -> None:
    with pytest.raises(ValueError, match="has no skills"):
        build_agent_card(Agent("empty", "Nothing."), "http://127.0.0.1:9")
