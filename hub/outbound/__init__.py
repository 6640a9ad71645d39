"""Outbound: the planner (desired vs known → minimal delta) and the executor (idempotent
writes with retries, backoff, Retry-After and a per-target rate limit)."""

from hub.outbound.executor import Executor, ExecutorReport
from hub.outbound.planner import Planner, PlannerReport

__all__ = ["Executor", "ExecutorReport", "Planner", "PlannerReport"]
