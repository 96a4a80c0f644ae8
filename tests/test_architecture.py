"""The shape the code keeps: the store owns the database and every state change, the services only call it.

Read from the source itself (no process), so a change that breaks the shape fails here with the place named."""

import ast
import re
from pathlib import Path

import pytest
from queuectl_core.store import postgres_schema, sqlite_schema

ROOT = Path(__file__).resolve().parent.parent
SERVICES = sorted((ROOT / "services").glob("*/queuectl_*/**/*.py"))
CORE = sorted((ROOT / "shared" / "queuectl_core").glob("**/*.py"))
DRIVERS = {"sqlite3", "psycopg", "psycopg_pool"}
# The project writes SQL keywords in capitals: a statement, not English that happens to say "select ... from".
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")
MAX_CORE_LINES = 450


def parsed(path):
    return ast.parse(path.read_text(), str(path))


def test_the_services_and_the_core_are_where_this_test_looks():
    assert len(SERVICES) > 30 and len(CORE) > 20


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_service_imports_a_database_driver(path):
    imported = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    assert not imported & DRIVERS, f"{path}: the store is the only code that talks to the database"


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_service_decides_a_state_change(path):
    names = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.name for alias in node.names)
    assert "decide" not in names, f"{path}: hand the run's Outcome to the store, which decides the transition"


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_service_holds_sql(path):
    strings = [node.value for node in ast.walk(parsed(path))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert not [text for text in strings if SQL.search(text)], f"{path}: SQL belongs in queuectl_core.store"


@pytest.mark.parametrize("path", CORE, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_of_the_core_passes_450_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_CORE_LINES, f"{path} has {lines} lines: split it by what its parts do"


def test_both_backends_number_the_same_schema_changes_alike():
    assert [name for name, _ in sqlite_schema.MIGRATIONS] == [name for name, _ in postgres_schema.MIGRATIONS]


def test_the_guards_catch_what_they_look_for(tmp_path):
    """The checks above would see a driver import, a decide call and a statement if a service had them."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom queuectl_core.lifecycle import decide\n"
                   "QUERY = 'SELECT id FROM jobs'\n")
    tree = parsed(bad)
    assert any(isinstance(node, ast.Import) and node.names[0].name in DRIVERS for node in ast.walk(tree))
    assert any(isinstance(node, ast.ImportFrom) and node.names[0].name == "decide" for node in ast.walk(tree))
    assert SQL.search("SELECT id FROM jobs") and not SQL.search("select a queue from the list")
