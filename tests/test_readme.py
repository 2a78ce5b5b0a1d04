"""The README's Python example runs as written (docs that rot mislead the first reader)."""

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    # Every Python block, in order, in one namespace (later blocks use earlier names).
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "→ bad" in out and "agreement" in out
    assert "SELECT" in out and "CASE" in out
    assert (tmp_path / "pellucid-report" / "report.html").exists()
