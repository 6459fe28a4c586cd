"""The house keeps its shape: every module lives in a room, and rooms import only the
rooms below them (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "enforcer"

# room -> the other rooms it may import. Written out in docs/architecture.md too.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "ledger": {"core"},
    "formats": {"core"},
    "exposure": {"core", "ledger"},
    "outputs": {"core"},
    "config": {"core"},
    "live": {"core", "ledger", "exposure", "formats", "outputs", "config"},
    "replay": {"core", "ledger", "exposure", "formats", "outputs"},
    "remediate": {"core", "ledger", "exposure", "formats", "outputs", "replay"},
    "cli": {
        "core",
        "ledger",
        "exposure",
        "formats",
        "outputs",
        "config",
        "live",
        "replay",
        "remediate",
        "demo",
    },
    "demo": {"core", "ledger", "formats", "testing"},
    "testing": {"core", "ledger", "formats", "live", "demo"},
}
# Third-party packages that talk to the outside world: never in the pure core.
NOT_IN_CORE = {"confluent_kafka", "aiokafka", "rocksdict", "prometheus_client", "tqdm", "socket"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _room(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in ``path``, at any depth (lazy ones included)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def test_every_module_lives_in_a_room() -> None:
    """Only the package's entry points sit at the top of enforcer/."""
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py"}
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert rooms == set(MAY_IMPORT)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_room_imports_only_the_rooms_below_it(path: Path) -> None:
    """Imports between rooms follow the table; the core imports no other room."""
    room = _room(path)
    if room is None:
        return
    for module, _ in _imports(path):
        parts = module.split(".")
        if parts[0] != "enforcer" or len(parts) < 2 or parts[1] == room:
            continue
        assert parts[1] in MAY_IMPORT[room], f"{room} imports {module}"


@pytest.mark.parametrize(
    "path", [p for p in _modules() if _room(p) == "core"], ids=lambda p: p.name
)
def test_the_core_imports_no_client_of_the_outside_world(path: Path) -> None:
    """The pure core never loads a Kafka client, a database, an HTTP or metrics stack."""
    for module, _ in _imports(path):
        assert module.split(".")[0] not in NOT_IN_CORE, f"{path.name} imports {module}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_from_another_module(path: Path) -> None:
    """What is shared is public: no ``from enforcer.x import _helper``."""
    for module, names in _imports(path):
        if module.startswith("enforcer"):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{path.name} imports {private} from {module}"


def test_the_architecture_document_lists_the_same_rules() -> None:
    """docs/architecture.md shows each room and what it may import, as checked here."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)/` \| ([^|]*) \|", text, flags=re.MULTILINE)
    documented = {
        room: {name.strip("` /") for name in cell.split(",") if name.strip("` /-—")}
        for room, cell in rows
    }
    assert documented == MAY_IMPORT
