"""Bad usage exits with exactly 2 (README: "exit 2 for bad usage"), through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskengine.cli import main
from riskengine.core.config import get_settings


@pytest.mark.parametrize("argv", [
    ["keys", "create", "--role", "superuser"],
    ["keys", "create", "--role", "inspector"],                        # no --district
    ["keys", "create", "--role", "sector", "--sector", "retail"],     # not a pilot sector
    ["serve", "--port", "70000"],
    ["plan", "--capacity", "4"],                                      # no lake, no as-of
])
def test_bad_usage_exits_with_exactly_2_and_one_line(argv: list[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("RISKENGINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
    finally:
        get_settings.cache_clear()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()
