"""``meshgate call``: send a message to an agent (or to any agent with a skill) via the gateway."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import click
import httpx

from meshgate.commands.endpoints import Endpoints, endpoint_options, fail, print_json

__all__ = ["call"]


async def _agent_for(endpoints: Endpoints, http: httpx.AsyncClient, skill: str) -> str:
    response = await endpoints.gateway_get(http, f"/v1/agents?skill={skill}")
    if response.status_code != 200:
        raise fail(response, "gateway")
    found = response.json()
    if not found:
        raise click.ClickException(f"no routable agent offers the skill {skill!r}")
    return str(found[0]["name"])


async def _invoke(endpoints: Endpoints, agent: str, body: dict[str, Any]) -> dict[str, Any]:
    async with endpoints.client() as http:
        try:
            response = await http.post(
                f"{endpoints.gateway}/v1/invoke/{agent}",
                json=body,
                headers=endpoints.gateway_headers,
                timeout=httpx.Timeout(endpoints.timeout, read=300.0),
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"the gateway did not answer: {exc!r:.200}") from None
    if response.status_code != 200:
        raise fail(response, f"gateway /v1/invoke/{agent}")
    answer: dict[str, Any] = response.json()
    return answer


async def _stream(endpoints: Endpoints, agent: str, body: dict[str, Any], as_json: bool) -> str:
    """Print each event as it arrives; the final state."""
    state = "unknown"
    async with (
        endpoints.client() as http,
        http.stream(
            "POST",
            f"{endpoints.gateway}/v1/stream/{agent}",
            json=body,
            headers=endpoints.gateway_headers,
            timeout=httpx.Timeout(endpoints.timeout, read=300.0),
        ) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            raise fail(response, f"gateway /v1/stream/{agent}")
        event = "message"
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                payload = json.loads(line[5:])
                if as_json:
                    click.echo(json.dumps({"event": event, **payload}))
                elif event == "result":
                    _show_result(payload)
                elif event == "error":
                    click.echo(click.style(f"error: {payload.get('error')}", fg="red"), err=True)
                else:
                    text = payload.get("text") or payload.get("state") or ""
                    click.echo(click.style(f"[{event}] ", dim=True) + str(text))
                if event in ("result", "error"):
                    state = str(payload.get("state") or "failed")
    return state


def _show_result(result: dict[str, Any]) -> None:
    if result.get("state") != "completed":
        detail = result.get("error") or result.get("state")
        click.echo(click.style(f"{result.get('state')}: {detail}", fg="red"), err=True)
        return
    click.echo(result.get("text") or "")
    if result.get("data") is not None:
        click.echo(click.style("data: ", dim=True) + json.dumps(result["data"]))
    for citation in result.get("citations") or []:
        where = citation.get("source") or citation.get("url") or citation.get("title")
        click.echo(click.style("source: ", dim=True) + str(where or citation))


@click.command("call")
@endpoint_options
@click.argument("words", nargs=-1, required=True, metavar="[AGENT] MESSAGE")
@click.option("--skill", metavar="ID", help="Send to an agent offering this skill instead.")
@click.option("--stream", "streaming", is_flag=True, help="Print progress as it happens.")
@click.option("--context", "context_id", metavar="ID", help="Continue this conversation.")
@click.option("--json", "as_json", is_flag=True, help="Print the gateway's JSON answer.")
def call(
    endpoints: Endpoints,
    words: tuple[str, ...],
    skill: str | None,
    streaming: bool,
    context_id: str | None,
    as_json: bool,
) -> None:
    """Send MESSAGE to AGENT (or, with --skill, to an agent offering that skill).

    Exits 0 when the task completed, 1 otherwise.

    \b
      meshgate call planner "What is 17% of the population of Lyon?"
      meshgate call --skill summarize "Summarize: ..." --stream
    """
    target: str | None = None
    if skill is None:
        if len(words) != 2:
            raise click.UsageError("give AGENT and MESSAGE (quote the message), or --skill ID")
        target, message = words
    elif len(words) != 1:
        raise click.UsageError("with --skill give only MESSAGE (quote it)")
    else:
        message = words[0]
    body: dict[str, Any] = {"text": message}
    if skill:
        body["skill"] = skill
    if context_id:
        body["contextId"] = context_id

    async def run() -> str:
        agent = target
        if agent is None:
            async with endpoints.client() as http:
                agent = await _agent_for(endpoints, http, str(skill))
        if not as_json:
            click.echo(click.style(f"→ {agent}", dim=True), err=True)
        if streaming:
            return await _stream(endpoints, agent, body, as_json)
        answer = await _invoke(endpoints, agent, body)
        if as_json:
            print_json(answer)
        else:
            _show_result(answer)
        return str(answer.get("state"))

    started = time.perf_counter()
    state = anyio.run(run)
    if not as_json:
        elapsed = time.perf_counter() - started
        click.echo(click.style(f"{state} in {elapsed:.2f} s", dim=True), err=True)
    if state != "completed":
        raise SystemExit(1)
