"""Every ``python`` block of docs/operating.md runs as written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int) -> None:
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), {"__name__": "docs_example"})


def test_slow_consumer_example_sets_what_it_says() -> None:
    text = DOC.read_text()
    start = text.index("## Slow consumers and limits\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:] if end < 0 else text[start:end], re.S)
    assert blocks
    scope: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(blocks[0], f"{DOC.name}[slow consumers]", "exec"), scope)
    engine = scope["io"].engine  # type: ignore[attr-defined]
    assert engine.max_buffered_bytes == 4 * 1024 * 1024
    assert engine.drop_volatile_above == 256 * 1024 and engine.drain_timeout == 10
    assert scope["stats"].volatile_dropped == 0  # type: ignore[attr-defined]
