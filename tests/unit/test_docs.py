"""The docs stay inside the repository and name what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from enforcer.cli import COMMANDS
from enforcer.core.models import DeadLetterReason, ViolationEvent
from enforcer.core.step import HEADER_ACTION, HEADER_POLICY
from enforcer.outputs.report.model import RecordCounts, ReplaySource

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_every_link_resolves_inside_the_repository() -> None:
    """No link leaves the repository (the contract is docs/contract.md, not a shared file)."""
    checked = 0
    for page in _markdown():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), (page.name, target)
            assert path.exists(), (page.name, target)
            checked += 1
    assert checked > 10


def test_no_page_points_at_an_outside_spec() -> None:
    """README and docs name the project's own contract, not a file outside the repo."""
    for page in _markdown():
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "/work/" not in text, page.name


def test_the_contract_names_every_command_field_reason_and_header() -> None:
    """docs/contract.md covers the formats the code produces."""
    text = (DOCS / "contract.md").read_text(encoding="utf-8")
    for name, _, _ in COMMANDS:
        assert f"enforcer {name}" in text, name
    for reason in DeadLetterReason:
        assert f"`{reason.value}`" in text, reason
    for field in ViolationEvent.model_fields:
        assert f'"{field}"' in text, field
    for name, info in RecordCounts.model_fields.items():
        assert f"`{info.alias or name}`" in text, name
    for field in ("sha256", "key_id", "summary", "by_day", "affected_subjects_by_rule"):
        assert f"`{field}`" in text, field
    assert "sha256" in ReplaySource.model_fields
    for header in (HEADER_ACTION, HEADER_POLICY, "enforcer.error.reason", "enforcer.source.offset"):
        assert f"`{header}`" in text, header
    assert "ENFORCER_PHONE_DEFAULT_REGION" in text and "--version" in text


def test_the_integration_guide_covers_both_teams() -> None:
    """Keys, tags and dead letters for producers; headers and read_committed for consumers."""
    text = (DOCS / "integration.md").read_text(encoding="utf-8")
    for needle in ("subject id", "read_committed", HEADER_ACTION, HEADER_POLICY, "retraction"):
        assert needle in text, needle
    for reason in ("invalid-json", "not-an-object", "schema"):
        assert reason in text


HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
FENCE = re.compile(r"^(```|~~~)")
# An upstream project's public tracker may be cited by name ("Apicurio issue 7373").
OUTSIDE_REFERENCE = re.compile(
    r"§\s*\d|(?<!Apicurio )\b[Ii]ssue \d+|\b[Tt]he issue\b|\b[Ii]ssue's\b"
)


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings (lower case, punctuation gone, dashes)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_every_anchor_names_a_heading() -> None:
    """A link to `page.md#section` lands on a heading that exists, not the top of the page."""
    checked = 0
    for page in _markdown():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")) or "#" not in target:
                continue
            path, anchor = target.split("#", 1)
            linked = (page.parent / path).resolve() if path else page
            assert anchor in _anchors(linked), (page.name, target)
            checked += 1
    assert checked > 5


def _kept_text() -> list[Path]:
    """The pages, and every source, test, script and deployment file."""
    found = list(_markdown())
    for folder in ("enforcer", "tests", "bench", "scripts", "deploy", ".ci"):
        for path in sorted((ROOT / folder).rglob("*")):
            text = path.suffix in {".py", ".sh", ".yaml", ".yml", ".md", ".tpl", ".toml"}
            script = path.is_file() and path.parent.name == ".ci"
            if (text or script) and path != Path(__file__) and "__pycache__" not in path.parts:
                found.append(path)
    return found


def test_no_page_cites_sections_or_issues_kept_elsewhere() -> None:
    """`§7`, `issue 20` or `the issue's target` points at a text the reader of the
    repository does not have: not in the docs, nor in the code, tests or scripts."""
    for page in _kept_text():
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            found = OUTSIDE_REFERENCE.search(line)
            assert found is None, f"{page.relative_to(ROOT)}:{number}: {found and found[0]}"


VARIABLE = re.compile(r"ENFORCER_[A-Z0-9_]*[A-Z0-9](?:_\*)?")
# Groups the settings table names by prefix (security.md and formats.md list each).
GROUPED = ("ENFORCER_SSL_", "ENFORCER_SASL_", "ENFORCER_SCHEMA_REGISTRY_")


def _settings_section() -> str:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    return text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]


def test_the_settings_table_lists_every_setting_with_its_default() -> None:
    """docs/operations.md "Settings" names every variable the settings read, so that one
    with no flag (ENFORCER_TOPIC_REPLICATION_FACTOR, ENFORCER_BATCH_MAX) is findable."""
    from enforcer.config.settings import EnforcerSettings

    section = _settings_section()
    for name, field in EnforcerSettings.model_fields.items():
        variable = f"ENFORCER_{name.upper()}"
        grouped = next((prefix for prefix in GROUPED if variable.startswith(prefix)), None)
        if grouped is not None:
            assert f"`{grouped}*`" in section, variable
            continue
        row = next((line for line in section.splitlines() if f"`{variable}`" in line), None)
        assert row is not None, variable
        default = field.get_default(call_default_factory=False)
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert shown in row, (variable, shown)


def test_every_variable_the_docs_name_is_read() -> None:
    """A variable in the docs is a setting, ENFORCER_DEBUG, or one the test script or the
    build (setup.py, and the check of its extensions) reads."""
    from enforcer.config.settings import OTHER_VARIABLES, EnforcerSettings

    settings = {f"ENFORCER_{name.upper()}" for name in EnforcerSettings.model_fields}
    readers = [
        ROOT / "scripts" / "test.sh",
        ROOT / "setup.py",
        ROOT / "scripts" / "compiled_core.py",
    ]
    scripts = {v for path in readers for v in VARIABLE.findall(path.read_text(encoding="utf-8"))}
    known = settings | OTHER_VARIABLES | scripts | {"ENFORCER_MODEE"}  # a misspelling shown
    for page in _markdown():
        for variable in VARIABLE.findall(page.read_text(encoding="utf-8")):
            if variable.endswith("_*"):
                assert any(s.startswith(variable[:-1]) for s in settings | scripts), variable
            else:
                assert variable in known, (page.name, variable)


def test_the_metrics_table_names_every_dead_letter_reason() -> None:
    """`/metrics` shows enforcer_deadletters_total for every reason; the table lists them."""
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    row = next(
        line for line in text.splitlines() if line.startswith("| `enforcer_deadletters_total`")
    )
    for reason in DeadLetterReason:
        assert f"`{reason.value}`" in row, reason


def test_the_snapshot_section_names_every_field_of_a_snapshot() -> None:
    """docs/operations.md "Snapshots on the metrics topic" covers `MetricsSnapshot`."""
    from pydantic import BaseModel

    from enforcer.outputs.metrics import MetricsSnapshot

    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    section = text.split("\n## Snapshots on the metrics topic\n", 1)[1].split("\n## ", 1)[0]
    models: list[type[BaseModel]] = [MetricsSnapshot]
    while models:
        model = models.pop()
        for name, field in model.model_fields.items():
            shown = field.alias or name
            assert f'"{shown}"' in section or f"`{shown}`" in section, (model.__name__, shown)
            for candidate in getattr(field.annotation, "__args__", (field.annotation,)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    models.append(candidate)
