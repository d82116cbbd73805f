"""Progress where stderr is not a terminal: lines with progress, rate and ETA at a steady interval."""

from gatedrec.cli import main
from gatedrec.progress import LineProgress, progress_bar


def test_lines_carry_progress_rate_and_eta(capsys):
    with LineProgress(interval=0.0) as progress:
        task = progress.add_task("encoding texts", total=4, unit="text")
        progress.advance(task, 2)
        progress.advance(task, 2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("encoding texts: 2/4 (50%) texts, ") and "text/s" in lines[0] and "ETA " in lines[0]
    assert lines[1].startswith("encoding texts: 4/4 (100%) texts")


def test_lines_wait_for_the_interval(capsys):
    with LineProgress(interval=3600.0) as progress:
        task = progress.add_task("batches", total=1000, unit="batch")
        for _ in range(999):
            progress.advance(task)
    assert capsys.readouterr().err == ""


def test_a_command_whose_stderr_is_a_file_logs_progress_lines(tmp_path, small_folder, capsys, monkeypatch):
    monkeypatch.setenv("GATEDREC_PROGRESS_SECONDS", "0")
    assert isinstance(progress_bar(), LineProgress)  # pytest's captured stderr is not a terminal
    assert main(["train", "--data", str(small_folder), "--model", "lightgcn", "--epochs", "2",
                 "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "epochs: 1/2 (50%) epochs" in err and "epochs: 2/2 (100%) epochs" in err and "batch/s" in err
