"""Mutation score of the rule modules against their own tests (mutmut 3), as JSON.

    nice python benchmarks/mutation.py --module riskengine/core/ids.py \
        --tests tests/test_uscc_vectors.py tests/test_contract.py

A copy of the project is made in a temporary folder with a ``[tool.mutmut]`` section naming only the
given modules and tests, ``mutmut run`` mutates every line of those modules, and the result is read from
mutmut's own records: how many mutants the tests killed, and each survivor with its diff. A survivor
is either a missing test or an equivalent mutant (a change no behaviour can tell apart); the README
lists which is which for the last measured run.

Rule modules and their tests (the default when no ``--module`` is given; a pair per run is typical):
``RULES`` below.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# rule module -> the tests that are its own
RULES: dict[str, list[str]] = {
    "riskengine/core/timerule.py": ["tests/test_timerule_units.py"],
    "riskengine/core/ids.py": ["tests/test_uscc_vectors.py", "tests/test_contract.py"],
    "riskengine/core/calendar.py": ["tests/test_calendar.py"],
    "models/grading.py": ["tests/test_grading.py", "tests/test_grading_edges.py"],
    "riskengine/supervision/policy.py": ["tests/test_policy.py"],
    "riskengine/supervision/capacity.py": ["tests/test_capacity_units.py",
                                           "tests/test_policy_capacity_exact.py"],
    "riskengine/supervision/draw.py": ["tests/test_draw_units.py"],
    "riskengine/workflows/cases.py": ["tests/test_case_clocks.py"],
    "api/deps.py": ["tests/test_scope_units.py", "tests/test_api_access.py"],
}
# where the rule is part of a larger module: only these functions are mutated by default
FUNCTIONS: dict[str, list[str]] = {
    "riskengine/workflows/cases.py": ["_offset", "_check_day", "_documents", "case_view", "CaseFilter.check",
                                      "overview"],
    "api/deps.py": ["AuthPrincipal.from_record", "AuthPrincipal.actor", "AuthPrincipal.has",
                    "AuthPrincipal.district_scope", "AuthPrincipal.sees", "AuthPrincipal.scope_expr",
                    "requires", "check_enterprise_id"],
}
# copied into the scratch project (mutmut needs the importable packages and the tests)
COPY = ["riskengine", "models", "features", "api", "tests", "pyproject.toml", "README.md"]


def _scratch(folder: Path, modules: list[str], tests: list[str], timeout_multiplier: float) -> None:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, folder / name, ignore=shutil.ignore_patterns("__pycache__", "mutants"))
        elif src.exists():
            shutil.copy2(src, folder / name)
    section = (
        "\n[tool.mutmut]\n"
        f"source_paths = {json.dumps([n for n in COPY if (ROOT / n).is_dir() and n != 'tests'])}\n"
        f"only_mutate = {json.dumps(modules)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
        'also_copy = ["tests", "README.md"]\n'
        # Each mutant forks from a server that has only collected the tests, never run them: Polars
        # starts its thread pool on first use, and a pool inherited across fork hangs (mutmut's
        # default forks from the process that ran the whole suite, so Polars mutants timed out).
        'process_isolation = "forkserver"\n'
        # CPU-seconds per mutant = (the tests' own time + 1) x multiplier x 2: generous on a busy box
        f"timeout_multiplier = {timeout_multiplier}\n"
    )
    with (folder / "pyproject.toml").open("a", encoding="utf-8") as f:
        f.write(section)


def _results(folder: Path, only: list[str]) -> tuple[dict[str, int], list[str]]:
    from mutmut.stats import status_by_exit_code

    counts: dict[str, int] = {}
    survivors: list[str] = []
    for meta in sorted((folder / "mutants").rglob("*.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if only and not any(fnmatch.fnmatch(name, pattern) for pattern in only):
                continue
            status = status_by_exit_code[code]
            counts[status] = counts.get(status, 0) + 1
            if status in ("survived", "no tests"):
                survivors.append(name)
    return counts, survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", nargs="+", help="rule modules to mutate (default: every RULES entry)")
    parser.add_argument("--tests", nargs="+", help="tests to run (default: the modules' own, from RULES)")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutant runs (default 1)")
    parser.add_argument("--timeout-multiplier", type=float, default=15.0,
                        help="mutmut's per-mutant CPU-time budget over the clean run (default 15)")
    parser.add_argument("--functions", nargs="+", default=[],
                        help="mutate only these functions of the modules (e.g. case_view overview; a "
                             "method as Class.method), for a rule that lives inside a larger module")
    parser.add_argument("--keep", type=Path, help="keep the scratch project here (for `mutmut browse`)")
    args = parser.parse_args()
    modules = args.module or list(RULES)
    tests = args.tests or sorted({t for m in modules for t in RULES.get(m, [])})
    if not tests:
        parser.error("no tests for these modules: give --tests")

    folder = Path(tempfile.mkdtemp(prefix="riskengine-mutation-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    _scratch(folder, modules, tests, args.timeout_multiplier)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.perf_counter()
    # per module: the functions given (or its FUNCTIONS entry), else every mutant of it
    chosen = {m: args.functions or FUNCTIONS.get(m, []) for m in modules}
    functions = sorted({f for fs in chosen.values() for f in fs})
    only = ([_pattern(m, f) for m, fs in chosen.items() for f in fs]
            + [_pattern(m, None) for m, fs in chosen.items() if not fs]) if functions else []
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children),
                          *only], cwd=folder, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    counts, survivors = _results(folder, only)
    diffs = {}
    for name in survivors:
        shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=folder, env=env,
                               capture_output=True, text=True, check=False)
        diffs[name] = [line for line in shown.stdout.splitlines()
                       if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    # Detected = killed or timed out (a mutant that makes the tests hang, e.g. a loop that no longer
    # advances: mutants fork from a server that never ran Polars, so a timeout is the mutant's own).
    # Undetected = survived, or "no tests" (a mutant in code none of the given tests reaches).
    detected = counts.get("killed", 0) + counts.get("timeout", 0)
    undetected = counts.get("survived", 0) + counts.get("no tests", 0)
    out = {
        "tool": "mutmut " + _version(),
        "modules": modules,
        "tests": tests,
        "functions": functions or "all",
        "mutants": sum(counts.values()),
        "by_status": counts,
        "kill_rate": round(detected / (detected + undetected), 4) if detected + undetected else None,
        "survivors": diffs,
        "seconds": round(seconds, 1),
    }
    if run.returncode != 0 and not counts:
        out["error"] = (run.stderr or run.stdout)[-2000:]
    print(json.dumps(out, ensure_ascii=False, indent=2))
    if args.keep is None:
        shutil.rmtree(folder, ignore_errors=True)


def _pattern(module: str, function: str | None) -> str:
    """mutmut's name glob for the mutants of one function (``x_name``) or method (``xǁClassǁname``) of
    ``module``, or of all of it (``None``)."""
    dotted = module.removesuffix(".py").replace("/", ".")
    if function is None:
        return f"{dotted}.*"
    if "." in function:
        cls, method = function.split(".", 1)
        return f"{dotted}.x\u01c1{cls}\u01c1{method}__mutmut_*"
    return f"{dotted}.x_{function}__mutmut_*"


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    main()
