"""Smoke test of benchmarks/generation_speed.py in --quick mode: a tiny random PaliGemma written by transformers,
loaded by both libraries, writes identical tokens at every batch size (EOS disabled, so exactly --new-tokens
each), gives a row per library and batch, and the same results as JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

pytest.importorskip("transformers")


@pytest.mark.slow
@pytest.mark.usefixtures("restore_threads")
def test_quick_run_checks_identical_tokens_and_reports_both_libraries(tmp_path: Path,
                                                                      load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("generation_speed")
    out = tmp_path / "results.json"
    console = Console(file=io.StringIO(), width=250)
    results = bench.main(["--quick", "--threads", "1", "--json", str(out)], console=console)

    assert results["parity"]["identical"]
    assert set(results["parity"]["batches"]) == {"1", "2"}
    assert all(b["lengths"] == [4] for b in results["parity"]["batches"].values())
    rows = {(r["library"], r["batch"]): r for r in results["rows"]}
    assert set(rows) == {(lib, b) for lib in ("transformers", "omnibind") for b in (1, 2)}
    for row in rows.values():
        assert row["new_tokens"] == 4 and row["prefill_seconds"] > 0 and row["end_to_end_tokens_per_s"] > 0
        assert len(row["full_seconds_each"]) == 1
    assert rows[("transformers", 1)]["end_to_end_speedup_vs_transformers"] == 1.0
    assert results["shape"]["vocab_size"] == 2048 and "decoder 64 wide" in results["shape"]["described"]
    assert json.loads(out.read_text()) == results
    printed = console.file.getvalue()
    assert "identical tokens yes" in printed and "decode tokens/s" in printed and "1 threads" in printed


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str],
                                   load_script: Callable[[str], ModuleType]) -> None:
    bench = load_script("generation_speed")
    with pytest.raises(SystemExit):
        bench.parse_args(["--new-tokens", "1"])
    assert "--new-tokens must be at least 2" in capsys.readouterr().err
    args = bench.parse_args(["--batches", "1,4"])
    assert args.batches == [1, 4] and args.new_tokens == 24 and args.iters == 2 and args.warmup == 0
