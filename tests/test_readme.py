"""The README's "Use" block runs as written."""

import re
from pathlib import Path

import matplotlib.pyplot as plt

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_use_block_runs_as_written(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Use\n"):text.index("\n## ", text.index("## Use\n") + 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    plt.switch_backend("Agg")
    scope = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    plt.close("all")
    assert scope["part"].n_regions > 1 and (tmp_path / "partition.png").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000000.pt", "step_0000010.pt",
                                                                           "step_0000100.pt"]
    assert (tmp_path / "track" / "track.csv").is_file()
