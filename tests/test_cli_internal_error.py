"""The CLI's last line of defence: an error the engine did not foresee (a bug, or a library's Rust
panic, which Python sees as a BaseException) ends in one line naming a file that keeps the traceback,
never in a traceback on the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_an_unexpected_error_ends_in_one_line_and_a_traceback_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from riskengine import cli  # noqa: PLC0415

    class Panic(BaseException):  # what a Rust library's panic looks like from Python
        pass

    def boom(*_: object, **__: object) -> None:
        raise Panic("assertion failed: i < self.len()")

    monkeypatch.setattr(cli, "app", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile  # noqa: PLC0415
    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(SystemExit) as exited:
        cli.main(["ingest"])
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error (Panic: assertion failed: i < self.len())" in err[0]
    saved = list(tmp_path.glob("riskengine-error-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in err[0]
    assert "Traceback" in saved[0].read_text(encoding="utf-8")
