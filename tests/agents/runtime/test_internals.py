"""Small pieces of the runtime on their own: the wire format and the task bookkeeping."""

from __future__ import annotations

import anyio
import pytest
from a2a.helpers.proto_helpers import new_data_part, new_text_part
from a2a.server.id_generator import IDGeneratorContext
from a2a.types import Message, Role
from google.protobuf.json_format import MessageToDict

from agents.errors import AgentError, UnknownSkill
from agents.runtime import (
    incoming_message,
    reply_from_parts,
    reply_parts,
    select_skill,
    whole_numbers,
)
from agents.runtime.dedup import RecentMessages
from agents.runtime.tracking import FreshIds, OpenTasks
from agents.sdk import Citation, IncomingMessage, Reply
from tests.agents.runtime.support import make_agent


def test_a_reply_round_trips_through_its_parts() -> None:
    reply = Reply("text", {"n": [1, 2], "nested": {"ok": True}}, (Citation("s", "t", "a"),))
    parts = reply_parts(reply)
    assert [p.media_type for p in parts] == ["text/plain", "application/json"]
    back = reply_from_parts(parts)
    assert back.text == "text"
    assert back.data == {"n": [1, 2], "nested": {"ok": True}}
    assert back.citations == reply.citations
    # Citations without data, and plain text answers from agents that are not ours.
    assert reply_from_parts(reply_parts(Reply("x", citations=(Citation("s"),)))).data is None
    assert reply_from_parts([new_text_part("a"), new_text_part("b")]) == Reply("a\nb")
    assert reply_from_parts([new_data_part([1, 2])]) == Reply("")


def test_whole_numbers_come_back_as_ints() -> None:
    data = {
        "value": 391,
        "ratio": 3.5,
        "negative": -2,
        "big": 2**53,
        "flags": [True, False, None],
        "nested": {"rows": [[1, 2.25], {"n": 0}]},
        "text": "7",
    }
    back = reply_from_parts(reply_parts(Reply("x", data)))
    assert back.data == data
    assert back.data is not None
    # Equal is not enough: 391.0 == 391. The types are the point.
    assert type(back.data["value"]) is int
    assert type(back.data["big"]) is int
    assert type(back.data["ratio"]) is float
    assert [type(v) for v in back.data["flags"]] == [bool, bool, type(None)]
    assert type(back.data["nested"]["rows"][0][0]) is int
    assert type(back.data["nested"]["rows"][1]["n"]) is int
    # What protobuf does to numbers, and what whole_numbers undoes.
    raw = MessageToDict(reply_parts(Reply("x", {"n": 391}))[1].data)
    assert type(raw["data"]["n"]) is float
    assert whole_numbers(raw) == {"data": {"n": 391}, "citations": []}
    assert whole_numbers(-0.0) == 0
    assert whole_numbers(float("inf")) == float("inf")


def test_an_unknown_skill_is_the_agents_error() -> None:
    agent = make_agent()
    with pytest.raises(UnknownSkill) as named:
        select_skill(agent, IncomingMessage("hi"), {"skill": "nope"})
    assert isinstance(named.value, AgentError)
    assert (named.value.code, named.value.status) == ("unknown-skill", 400)
    assert "has no skill 'nope'; its skills: echo, slow, fail, crash, ask" in str(named.value)
    with pytest.raises(UnknownSkill, match="several skills"):
        select_skill(agent, IncomingMessage("hi"), {})
    assert select_skill(agent, IncomingMessage("hi"), {"skill": "echo"}).id == "echo"


def test_an_incoming_message_as_plain_values() -> None:
    message = Message(message_id="m", context_id="c", task_id="t", role=Role.ROLE_USER)
    message.parts.extend([new_text_part("one"), new_data_part({"k": "v"}), new_data_part([1])])
    message.parts.append(new_text_part("two"))
    message.metadata.update({"skill": "echo"})
    incoming = incoming_message(message)
    assert incoming.text == "one\ntwo"
    assert incoming.data == ({"k": "v"}, {"value": [1.0]})
    assert (incoming.context_id, incoming.task_id, incoming.message_id) == ("c", "t", "m")
    assert incoming.metadata == {"skill": "echo"}


def test_fresh_ids_are_forgotten_once_saved_or_when_too_many() -> None:
    fresh = FreshIds(limit=2)
    first, second = (fresh.generate(IDGeneratorContext()) for _ in range(2))
    assert first in fresh
    assert second in fresh
    fresh.saved(first)
    assert first not in fresh
    third, fourth = (fresh.generate(IDGeneratorContext()) for _ in range(2))
    assert second not in fresh  # evicted, oldest first
    assert third in fresh
    assert fourth in fresh


@pytest.mark.anyio
async def test_open_tasks_report_idle() -> None:
    tasks = OpenTasks()
    with anyio.fail_after(1):
        await tasks.wait_idle()  # nothing open: at once
    tasks.opened("a")
    tasks.opened("b")
    tasks.settled("a")
    assert len(tasks) == 1
    with anyio.move_on_after(0.01) as scope:
        await tasks.wait_idle()
    assert scope.cancelled_caught
    tasks.settled("b")
    with anyio.fail_after(1):
        await tasks.wait_idle()


@pytest.mark.anyio
async def test_seeded_messages_keep_the_newest_and_yield_to_live_ones() -> None:
    recent = RecentMessages(limit=2)
    recent.seed([("m1", "t1"), ("m2", "t2"), ("m3", "t3")])  # oldest first
    assert recent.claim("m1") is None  # past the limit: a new message
    recent.settle("m1", "t-new")
    for message_id, task_id in (("m3", "t3"), ("m1", "t-new")):
        known = recent.claim(message_id)
        assert known is not None
        assert await recent.first_task(known) == task_id
    recent.seed([("m1", "t-old")])  # this process's own send wins
    known = recent.claim("m1")
    assert known is not None
    assert await recent.first_task(known) == "t-new"
