"""The layout's own rules, read from the source (no import): no first-party module imports a
private name (`_x`) of another module, and modules and functions stay small enough to read.

The import direction itself (layers, rooms, no cycles) is `lint-imports` (`.importlinter`), run
by `make lint`, which `make test` runs first.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "reporting", "serving", "training", "features", "keepwell")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def name_of(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def private_imports(path: Path) -> list[str]:
    """`from our.module import _name` lines of one file (a module's own names are its business)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            found += [
                f"{name_of(path)}:{node.lineno} imports {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return found


def test_no_module_imports_a_private_name_of_another():
    found = [line for path in modules() for line in private_imports(path)]
    assert not found, "make the name public or keep its use in its module:\n" + "\n".join(found)


def test_private_import_check_sees_one():
    tree = "from serving.scoring.scorer import _hidden\n"
    node = ast.parse(tree).body[0]
    assert isinstance(node, ast.ImportFrom) and node.names[0].name.startswith("_")


def function_sizes(path: Path) -> dict[str, int]:
    sizes = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            key = f"{name_of(path)}:{node.name}"
            sizes[key] = max(sizes.get(key, 0), node.end_lineno - node.lineno + 1)
    return sizes


def test_modules_stay_under_the_line_limit():
    over = {}
    for path in modules():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            over[name_of(path)] = lines
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"


def test_functions_stay_under_the_line_limit():
    over = {}
    for path in modules():
        for key, lines in function_sizes(path).items():
            if lines > MAX_FUNCTION_LINES:
                over[key] = lines
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: {over}"


def test_the_bentoml_service_module_is_small():
    lines = len((ROOT / "serving" / "http" / "service.py").read_text().splitlines())
    assert lines < 60, f"serving/http/service.py has {lines} lines; its logic belongs elsewhere"


def test_no_module_switches_telemetry_at_import():
    """Importing the packages (the CLI application included) leaves the environment alone; the
    entry points call `keepwell.privacy.disable_telemetry`."""
    import json
    import subprocess
    import sys

    from keepwell.privacy import QUIET, TELEMETRY_OFF

    names = [*TELEMETRY_OFF, *QUIET]
    code = (
        "import json, os, cli.app, training.registry, serving.scoring.loading, "
        "reporting.kpi.compute, reporting.monitoring.run\n"
        f"print(json.dumps({{n: os.environ.get(n) for n in {names!r}}}))"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == dict.fromkeys(names)


def test_the_entry_point_switches_telemetry_off():
    from keepwell.privacy import TELEMETRY_OFF, disable_telemetry

    env = disable_telemetry({"DO_NOT_TRACK": "0"})
    assert env["DO_NOT_TRACK"] == "0", "a switch the caller set is kept"
    assert {k: env[k] for k in TELEMETRY_OFF if k != "DO_NOT_TRACK"} == {
        k: v for k, v in TELEMETRY_OFF.items() if k != "DO_NOT_TRACK"
    }


def test_a_logged_model_loads_with_the_code_it_carries():
    """`training.pyfunc.stage_code` copies `training` and the `keepwell` core into a model: what
    loading a target or effect model imports must need nothing else of ours (no CLI, features,
    serving or reporting)."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('cli', 'features', 'serving', 'reporting'):\n"
        "            raise ImportError('the model bundle has no ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import training.pyfunc, training.effect.pyfunc\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "DO_NOT_TRACK": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
