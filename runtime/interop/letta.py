"""Letta agent files (``.af``): memory blocks, archival passages, optionally messages.

An agent file is JSON: ``agents`` (each with ``block_ids``, ``messages``,
maybe ``passages``) beside top-level ``blocks`` (``id``, ``label``, ``value``,
``limit``, ``description``), or an older single agent with ``core_memory``.
Each non-empty block becomes a memory (metadata ``letta``: label, limit, agent);
archival passages become memories; messages only with ``with_messages``.
Secrets (``tool_exec_environment_variables``, ``secrets``) are never read: the
result lists that they were left behind. Tools, code and LLM settings are not
memories and are not imported.

Not here: exporting to Letta (an agent file needs an agent, not just memories).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InteropError
from .model import PortableMemory, Skipped, portable
from .safe_read import json_bytes, read_file

__all__ = ["SYSTEM", "read_agent_file"]

SYSTEM = "letta"
SECRET_KEYS = ("tool_exec_environment_variables", "secrets", "environment_variables")


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InteropError(f"{where} must be a list of objects", code="interop.bad_record")
    return value


def _message_text(msg: dict[str, Any], where: str) -> Any:
    content = msg.get("content", msg.get("text"))
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if not all(isinstance(p, str) for p in parts):
            raise InteropError(f"{where}: content text must be strings", code="interop.bad_record")
        return "\n".join(str(p) for p in parts)
    return content


def read_agent_file(source: Path, with_messages: bool = False
                    ) -> tuple[list[PortableMemory], list[Skipped]]:  # fmt: skip
    data = json_bytes(read_file(source), source.name)
    if not isinstance(data, dict):
        raise InteropError(f"{source.name}: an agent file is a JSON object",
                           code="interop.bad_record")  # fmt: skip
    agents = _objects(data.get("agents"), "agents") or ([data] if "core_memory" in data else [])
    blocks = {
        b["id"]: b for b in _objects(data.get("blocks"), "blocks") if isinstance(b.get("id"), str)
    }
    out: list[PortableMemory] = []
    skipped: list[Skipped] = []
    for a, agent in enumerate(agents):
        agent_id = str(agent.get("id") or agent.get("name") or f"agent-{a}")
        if any(agent.get(k) for k in SECRET_KEYS):
            skipped.append(Skipped(agent_id, "secrets", "never imported"))
        own = _objects(agent.get("core_memory"), f"agent {agent_id} core_memory")
        ids = agent.get("block_ids") or []
        if not isinstance(ids, list):
            raise InteropError("block_ids must be a list", code="interop.bad_record")
        own += [blocks[i] for i in ids if isinstance(i, str) and i in blocks]
        for b, block in enumerate(own):
            label = block.get("label", f"block-{b}")
            bid = block.get("id") or f"{agent_id}:{label}"
            value = block.get("value")
            if value == "":
                skipped.append(Skipped(str(bid), "block", "empty"))
                continue
            meta: dict[str, Any] = {
                "letta": {
                    "kind": "block",
                    "agent": agent_id,
                    "label": label,
                    **{k: block[k] for k in ("limit", "description") if k in block},
                }
            }
            out.append(portable(system=SYSTEM, original_id=bid, text=value,
                                where=f"block {bid}", metadata=meta,
                                created_at=block.get("created_at"),
                                updated_at=block.get("updated_at")))  # fmt: skip
        passages = _objects(agent.get("passages", agent.get("archival_memory")), "passages")
        for p, passage in enumerate(passages):
            pid = passage.get("id") or f"{agent_id}:passage-{p}"
            out.append(portable(
                system=SYSTEM, original_id=pid, text=passage.get("text"), where=f"passage {pid}",
                created_at=passage.get("created_at"), tags=passage.get("tags"),
                metadata={"letta": {"kind": "passage", "agent": agent_id}},
            ))  # fmt: skip
        messages = _objects(agent.get("messages"), "messages")
        if messages and not with_messages:
            skipped.append(Skipped(agent_id, "messages", f"{len(messages)} left out; "
                                   "pass --with-messages"))  # fmt: skip
            continue
        for m, msg in enumerate(messages):
            mid = msg.get("id") or f"{agent_id}:message-{m}"
            text = _message_text(msg, f"message {mid}")
            if not text:
                continue
            out.append(portable(
                system=SYSTEM, original_id=mid, text=text, where=f"message {mid}",
                created_at=msg.get("created_at"),
                metadata={"letta": {"kind": "message", "agent": agent_id,
                                    "role": msg.get("role")}},
            ))  # fmt: skip
    top = _objects(data.get("passages"), "passages") if "agents" in data else []
    for p, passage in enumerate(top):
        pid = passage.get("id") or f"passage-{p}"
        out.append(portable(system=SYSTEM, original_id=pid, text=passage.get("text"),
                            where=f"passage {pid}", created_at=passage.get("created_at"),
                            metadata={"letta": {"kind": "passage"}}))  # fmt: skip
    return out, skipped
