"""Load a policy: YAML bytes → validated file → compiled policy, or one clear error."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from enforcer.core.parse import format_location
from enforcer.core.policy.compiled import (
    DEFAULT_DESTINATION,
    Policy,
    PolicyConfigError,
    compile_policy,
)
from enforcer.core.policy.guardrail import find_leak
from enforcer.core.policy.spec import PolicyFile

DEFAULT_POLICY_ORIGIN = "<built-in default>"


class PolicyLoadError(ValueError):
    """An invalid policy. The message names the file, the place and the problem."""


def default_policy_bytes() -> bytes:
    """The canonical text of the built-in default policy (also shipped as an example)."""
    return resources.files("enforcer.core.policy").joinpath("default.yaml").read_bytes()


def policy_version(data: bytes) -> str:
    """``sha256:`` and the hex SHA-256 of the policy file's bytes (docs/contract.md:
    default policy)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_policy(path: Path | None, *, destination: str = DEFAULT_DESTINATION) -> Policy:
    """Load and compile the policy at ``path``, or the built-in default when ``None``."""
    if path is None:
        return parse_policy(
            default_policy_bytes(), origin=DEFAULT_POLICY_ORIGIN, destination=destination
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyLoadError(f"{path}: cannot read policy file: {exc.strerror}") from None
    return parse_policy(data, origin=str(path), destination=destination)


def parse_policy(data: bytes, *, origin: str, destination: str = DEFAULT_DESTINATION) -> Policy:
    """Validate and compile policy bytes; ``origin`` names them in error messages."""
    spec = parse_policy_file(data, origin=origin)
    try:
        policy = compile_policy(
            spec, version=policy_version(data), origin=origin, destination=destination
        )
    except PolicyConfigError as exc:
        raise PolicyLoadError(f"{origin}: {exc}") from None
    return _guarded(policy, data)


def _guarded(policy: Policy, data: bytes) -> Policy:
    """The policy, refused when security-only identifiers could reach its destination
    and it does not say so (docs/policy.md: the security guardrail), flagged when it does."""
    leak = find_leak(policy)
    if leak is None:
        return policy
    if policy.stated_override is not None:
        return replace(policy, security_override=policy.stated_override)
    types_named = any(rule.types is not None for rule in policy.rules)
    if leak.through_allow_list:
        place: tuple[str, ...] = ("destinations", policy.destination, "allow")
        fix = "take the security namespace out of the allow-list"
    else:
        place = ("rules",)
        fix = "stop them with an 'all-within' rule over the security namespaces"
    root = yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
    line = _line_of(root, place)
    where = f":{line}" if line is not None else ""
    raise PolicyLoadError(
        f"{policy.origin}{where}: at {'.'.join(place)}: {leak.describe(types_named)} "
        f"would reach {policy.destination}: identifiers given only to secure an account "
        f"must not; {fix}, or state 'security_override: {{reason: ...}}' if this is "
        "intended"
    )


def parse_policy_file(data: bytes, *, origin: str) -> PolicyFile:
    """Validate policy bytes against the file format, without compiling."""
    try:
        text = data.decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise PolicyLoadError(f"{origin}: the policy file is not valid UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise PolicyLoadError(f"{origin}{where}: invalid YAML: {problem}") from None
    except RecursionError:
        # PyYAML builds nested collections recursively: a file nested deeper than the
        # interpreter's stack is refused like any other invalid file (a running worker
        # keeps its policy; a starting one exits 2), not raised as an internal error.
        raise PolicyLoadError(f"{origin}: invalid YAML: nested too deeply") from None
    if not isinstance(document, dict):
        raise PolicyLoadError(f"{origin}: a policy must be a YAML mapping at the top level")
    try:
        return PolicyFile.model_validate(document)
    except ValidationError as exc:
        problems = sorted(
            _problem(origin, root, error)
            for error in exc.errors(include_url=False, include_input=False)
        )
        # Every problem, in file order, in one line: one error per run is slow to fix.
        raise PolicyLoadError("; ".join(text for _, text in problems)) from None


def _problem(origin: str, root: yaml.Node | None, error: Any) -> tuple[int, str]:
    """``(line or 0, "origin:line: at path: problem")`` for one validation error."""
    location = tuple(error["loc"])
    line = _line_of(root, location)
    where = f":{line}" if line is not None else ""
    path = format_location(location) or "(top level)"
    return line or 0, f"{origin}{where}: at {path}: {error['msg']}"


def _line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest YAML node on ``location`` that exists."""
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in location:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
