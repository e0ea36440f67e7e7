"""Every ``python`` code block of the guides runs, so that a guide cannot rot.

The blocks of one page run in order in one fresh process, sharing their names, as a
reader pasting them one after another would. A block that only shows a signature
or a fragment is marked on the line before its fence with ``<!-- no-run -->`` (an
HTML comment: invisible on the rendered page).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL_PAGES = sorted(
    [*ROOT.glob("docs/guide/*.md"), ROOT / "docs/getting-started.md", ROOT / "docs/index.md"]
)
FENCE = re.compile(r"(<!-- no-run -->\s*\n)?```python\n(.*?)```", flags=re.S)


def code_blocks(page: Path) -> list[str]:
    return [code for marker, code in FENCE.findall(page.read_text()) if not marker]


PAGES = [page for page in ALL_PAGES if code_blocks(page)]


def test_there_are_guides_with_code():
    assert len(PAGES) >= 10, [str(p) for p in PAGES]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_guide_code_runs(page, tmp_path):
    blocks = code_blocks(page)
    script = "\n\n".join(
        f"# --- block {i + 1} of {page.name}\n{code}" for i, code in enumerate(blocks)
    )
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, f"{page.name}:\n{proc.stderr[-4000:]}"
