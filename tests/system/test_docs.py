"""The user documents: links that lead somewhere, a README that stays a guide, no words from
the project's history, and examples and tables that match the code they describe."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from binance_funding_ws.state import decode_state, json_schema

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "playbooks/roles/funding"
README_MAX_LINES = 250


def user_documents() -> list[Path]:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    documents += [
        ROLE / "README.md",
        *(ROOT / name / "README.md" for name in ("daemon", "monitor", "simulator")),
    ]
    return [path for path in documents if path.is_file()]


FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed,
    spaces to hyphens (github-slugger's rule)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[*_]{1,2}([^*_]+)[*_]{1,2}", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.name}")
    return broken


@pytest.mark.parametrize("path", user_documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_to_an_existing_file_and_heading(path):
    assert broken_links(path) == []


def test_the_link_check_sees_a_broken_link_and_a_missing_heading(tmp_path):
    (tmp_path / "there.md").write_text("# A heading (`with code`)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading-with-code) [web](https://example.com/x)\n"
        "`[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n"
        "[gone](missing.md) [no heading](there.md#another)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "there.md#another: no heading #another in there.md",
    ]


def test_the_readme_is_a_guide_of_at_most_250_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; move reference text to docs/"
    )


HISTORY_WORDS = re.compile(r"the seed|seed's|seed-style|issue ?#\d*", re.IGNORECASE)


@pytest.mark.parametrize("path", user_documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_user_documents_use_no_words_from_the_project_history(path):
    found = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY_WORDS.search(line)
    ]
    assert found == [], "say 'the earlier daemon' or 'the earlier script' instead"


SHIPPED = ("daemon", "monitor", "simulator", "benchmarks", "playbooks", "inventory", "scripts")
SHIPPED_SUFFIXES = {".py", ".yml", ".yaml", ".j2", ".sh", ".md", ".toml", ".txt", ".cfg"}


def shipped_files() -> list[Path]:
    """What users run or read beside the documents: code, playbooks, scripts (messages,
    --help texts and comments all reach them)."""
    found = [ROOT / "ansible.cfg", *sorted((ROOT / "requirements").glob("*.txt"))]
    for top in SHIPPED:
        for path in sorted((ROOT / top).rglob("*")):
            skipped = {"__pycache__", "build"} & set(path.parts) or ".egg-info" in str(path)
            if path.suffix in SHIPPED_SUFFIXES and path.is_file() and not skipped:
                found.append(path)
    return [path for path in found if path.is_file()]


def test_shipped_code_and_tools_use_no_words_from_the_project_history():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in shipped_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY_WORDS.search(line)
    ]
    assert len(shipped_files()) > 100
    assert found == [], "say 'the earlier daemon' or 'the earlier script' instead"


def test_the_state_file_example_is_a_valid_state_file():
    text = (ROOT / "docs/state-file.md").read_text(encoding="utf-8")
    example = re.search(r"^```json\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert example is not None, "docs/state-file.md has no JSON example"
    document = json.loads(example.group(1))
    jsonschema.validate(document, json_schema())
    state = decode_state(example.group(1).encode(), "docs/state-file.md")
    assert state.funding["BTCUSDT"].funding_rate == "0.00024580"


def test_the_role_readme_names_every_role_variable_with_its_default():
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text(encoding="utf-8"))
    variables = {name for entry in specs["argument_specs"].values() for name in entry["options"]}
    variables |= set(defaults)
    readme = (ROLE / "README.md").read_text(encoding="utf-8")
    assert sorted(name for name in variables if f"`{name}`" not in readme) == []


REPO_PATH = re.compile(
    r"(?<![\w/.~-])((?:\./)?(?:scripts|playbooks|benchmarks|examples|docs|daemon|monitor|simulator"
    r"|tests|inventory|requirements)/[\w./*-]*[\w*])"
)


@pytest.mark.parametrize("path", user_documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_repository_path_a_document_names_exists(path):
    named = set(REPO_PATH.findall(path.read_text(encoding="utf-8")))
    missing = [name for name in sorted(named) if not any(ROOT.glob(name.removeprefix("./")))]
    assert missing == []


def test_the_architecture_tree_names_every_module_of_the_daemon_package():
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    tree = re.search(r"^```\n(daemon/binance_funding_ws/.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert tree is not None, "docs/architecture.md has no source tree"
    named = set(re.findall(r"\b(\w+\.py)\b", tree.group(1)))
    package = ROOT / "daemon/binance_funding_ws"
    modules = {path.name for path in package.rglob("*.py") if not path.name.startswith("__")}
    elsewhere = {
        path.name for name in ("monitor", "simulator") for path in (ROOT / name).rglob("*.py")
    }
    assert sorted(modules - named) == [], "modules missing from the tree in docs/architecture.md"
    assert sorted(named - modules - elsewhere) == [], "the tree names modules that do not exist"


def test_the_role_describes_each_variable_once_and_argument_specs_carry_the_defaults():
    """defaults/main.yml holds values only; meta/argument_specs.yml says what each variable
    means and carries the same default, so ansible-doc and the role's README agree."""
    defaults_text = (ROLE / "defaults/main.yml").read_text(encoding="utf-8")
    defaults = yaml.safe_load(defaults_text)
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text(encoding="utf-8"))
    for entry, spec in specs["argument_specs"].items():
        for name, option in spec["options"].items():
            assert option.get("description"), f"{entry}: {name} has no description"
            assert option.get("default") == defaults[name], f"{entry}: {name}'s default differs"
    comments = [
        line for line in defaults_text.splitlines() if line.startswith("# ") and "---" not in line
    ]
    assert len(comments) <= 3, "describe variables in meta/argument_specs.yml, once"
