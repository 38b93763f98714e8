"""Runs skills for A2A messages: the runtime's ``AgentExecutor``.

Each message becomes a task: the Task is enqueued first (``submitted``), then
``working``, one ``working`` update per ``ctx.progress(text)``, the reply as
an artifact and ``completed``. A :class:`~agents.sdk.SkillError` fails the
task with its message; any other exception fails it with a generic message
(the traceback goes to the log only). ``CancelTask`` cancels the running
skill and the task ends ``canceled``. Each run is a ``mesh.skill`` span in the
caller's trace (its ``traceparent`` header), so delegations continue it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from a2a.helpers.proto_helpers import new_task, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import TaskState
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import StatusCode

from agents.errors import UnknownSkill
from agents.runtime.metrics import SkillMetrics
from agents.runtime.tracking import OpenTasks
from agents.runtime.wire import (
    REPLY_ARTIFACT,
    incoming_message,
    reply_parts,
    select_skill,
)
from agents.sdk import (
    Agent,
    Delegator,
    IncomingMessage,
    LanguageModel,
    Reply,
    SkillError,
    SkillSpec,
    ToolCaller,
    ToolResult,
)

__all__ = ["SkillExecutor"]

logger = logging.getLogger("meshgate.agent")
_tracer = trace.get_tracer("meshgate.agents")

#: How long a cancelled skill may take to unwind before the task is closed anyway.
CANCEL_WAIT_SECONDS = 5.0


def _trace_parent(context: RequestContext) -> otel_context.Context | None:
    """The trace the caller's ``traceparent`` header names (None: the current context).

    The header wins over a current span: the SDK's own spans, when its telemetry
    is on, do not continue the caller's trace.
    """
    headers = context.call_context.state.get("headers") or {}
    extracted = propagate.extract(headers)
    if trace.get_current_span(extracted).get_span_context().is_valid:
        return extracted
    return None


class _NoTools:
    async def call(self, service: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        raise SkillError("no registry configured: this agent cannot call the mesh's tools")


class _NoPeers:
    async def ask(
        self, text: str, *, skill: str | None = None, agent: str | None = None, context_id: str = ""
    ) -> Reply:
        raise SkillError("no registry configured: this agent cannot reach peer agents")


@dataclass
class _Run:
    """One skill run: how to cancel it and whether its task has ended."""

    updater: TaskUpdater
    scope: anyio.CancelScope
    ended: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)

    async def end(self, state: TaskState, text: str = "", code: str = "") -> None:
        """Publish the final status once (later calls do nothing)."""
        if self.ended:
            return
        self.ended = True
        message = None
        if text:
            metadata = {"error": code} if code else None
            message = self.updater.new_agent_message([new_text_part(text)], metadata=metadata)
        await self.updater.update_status(state, message=message)


@dataclass(frozen=True)
class _SkillContext:
    """The :class:`~agents.sdk.SkillContext` of one run."""

    agent_name: str
    task_id: str
    context_id: str
    tools: ToolCaller
    peers: Delegator
    llm: LanguageModel | None
    run: _Run

    async def progress(self, text: str) -> None:
        if self.run.ended or self.run.scope.cancel_called:
            return
        message = self.run.updater.new_agent_message([new_text_part(text)])
        await self.run.updater.update_status(TaskState.TASK_STATE_WORKING, message=message)


class SkillExecutor(AgentExecutor):
    """Routes each message to a skill of ``agent`` and reports it as an A2A task."""

    def __init__(
        self,
        agent: Agent,
        metrics: SkillMetrics,
        open_tasks: OpenTasks,
        *,
        tools: ToolCaller | None = None,
        peers: Delegator | None = None,
        llm: LanguageModel | None = None,
    ) -> None:
        self.agent = agent
        self.metrics = metrics
        self.open_tasks = open_tasks
        self.tools: ToolCaller = tools if tools is not None else _NoTools()
        self.peers: Delegator = peers if peers is not None else _NoPeers()
        self.llm = llm
        self._runs: dict[str, _Run] = {}

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id, message = context.task_id, context.context_id, context.message
        if not task_id or not context_id or message is None:
            raise ValueError("the SDK gave a request without task, context or message")
        if context.current_task is None:  # a Task first, then its updates
            task = new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED, history=[message])
            await event_queue.enqueue_event(task)
        self.open_tasks.opened(task_id)
        run = _Run(TaskUpdater(event_queue, task_id, context_id), anyio.CancelScope())
        self._runs[task_id] = run
        try:
            incoming = incoming_message(message)
            try:
                spec = select_skill(self.agent, incoming, context.metadata)
            except UnknownSkill as exc:
                self.metrics.finished("unknown", "failed", None)
                await run.end(TaskState.TASK_STATE_FAILED, str(exc), exc.code)
                return
            await run.updater.start_work()
            ctx = _SkillContext(
                self.agent.name, task_id, context_id, self.tools, self.peers, self.llm, run
            )
            attributes = {
                "mesh.agent": self.agent.name,
                "mesh.skill": spec.id,
                "a2a.task_id": task_id,
            }
            with _tracer.start_as_current_span(
                "mesh.skill", context=_trace_parent(context), attributes=attributes
            ) as span:
                outcome = await self._run_skill(spec, run, ctx, incoming)
                span.set_attribute("mesh.outcome", outcome)
                if outcome in ("failed", "error"):
                    span.set_status(StatusCode.ERROR)
        finally:
            del self._runs[task_id]
            run.done.set()

    async def _run_skill(
        self, spec: SkillSpec, run: _Run, ctx: _SkillContext, incoming: IncomingMessage
    ) -> str:
        """Run the skill and publish how it ended; return the outcome (a metrics label)."""
        result: Reply | str | None = None
        error: Exception | None = None
        gauge = self.metrics.in_flight.labels(agent=self.agent.name)
        gauge.inc()
        started = time.perf_counter()
        try:
            with run.scope:
                try:
                    result = await spec.fn(incoming, ctx)
                except Exception as exc:  # reported below; never re-raised
                    error = exc
        finally:
            gauge.dec()
        elapsed = time.perf_counter() - started
        if run.scope.cancel_called:
            outcome = "canceled"
            await run.end(TaskState.TASK_STATE_CANCELED, "canceled")
        elif isinstance(error, SkillError):
            outcome = "failed"
            logger.info("skill %s refused task %s: %s", spec.id, ctx.task_id, error)
            code = getattr(error, "code", "") or "skill-error"
            await run.end(TaskState.TASK_STATE_FAILED, str(error) or "the skill failed", code)
        else:
            outcome = await self._reply(spec, run, ctx, result, error)
        self.metrics.finished(spec.id, outcome, elapsed)
        return outcome

    async def _reply(
        self,
        spec: SkillSpec,
        run: _Run,
        ctx: _SkillContext,
        result: Reply | str | None,
        error: Exception | None,
    ) -> str:
        try:
            if error is not None:
                raise error
            reply = Reply(text=result) if isinstance(result, str) else result
            if not isinstance(reply, Reply):
                raise TypeError(f"skill returned {type(result).__name__}, not Reply or str")
            parts = reply_parts(reply)
        except Exception:
            logger.exception(
                "skill %s of %s failed (task %s)", spec.id, self.agent.name, ctx.task_id
            )
            text = f"skill {spec.id!r} failed with an internal error"
            await run.end(TaskState.TASK_STATE_FAILED, text, "agent-internal")
            return "error"
        await run.updater.add_artifact(parts, name=REPLY_ARTIFACT)
        await run.end(TaskState.TASK_STATE_COMPLETED)
        return "completed"

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Cancel the task's skill and wait (bounded) until the task says ``canceled``.

        A task with no running skill here has ended already, or was never run
        by this process; the SDK closes those itself.
        """
        run = self._runs.get(context.task_id or "")
        if run is None:
            return
        run.scope.cancel()
        with anyio.move_on_after(CANCEL_WAIT_SECONDS):
            await run.done.wait()
        if not run.done.is_set():
            logger.warning("skill of task %s did not stop when cancelled", context.task_id)
            await run.end(TaskState.TASK_STATE_CANCELED, "canceled")

    def cancel_all(self) -> int:
        """Cancel every running skill (their tasks end ``canceled``); return how many."""
        runs = list(self._runs.values())
        for run in runs:
            run.scope.cancel()
        return len(runs)
