"""The composition study, end to end: train A (image–text), B (audio–text) and the from-scratch reference,
compose A and B with `omnibind compose`, train the connectors, then tabulate (results.md, results.csv, plots).
Finished runs are skipped, so it can be stopped and continued.

    python experiments/compose_study/run.py                      # the study (hours on 2 CPU cores)
    python experiments/compose_study/run.py --smoke /tmp/smoke   # every step with tiny step counts (minutes)

--smoke writes copies of the configs with a few steps, small streamed batches and a small evaluation into
another folder and runs the same steps there; its numbers mean nothing and go nowhere near docs/findings.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from omnibind.experiments.study import load_study, run_study
from omnibind.train.state import latest
from omnibind.yamlconfig import apply_overrides, load_yaml

HERE = Path(__file__).resolve().parent
BASES = ("base_image_text", "base_audio_text", "trimodal_scratch")
SMOKE = ["train.log_every=1", "optim.warmup_steps=1", "data.kind=shards", "data.batch_size=16",
         "data.num_workers=0", "data.shuffle_buffer=64", "eval.limit=48"]


def smoke_copy(out: Path) -> Path:
    """Copies of the study and its configs in `out`, each run with 2 steps (the untrained connector: 1)."""
    import yaml

    (out / "runs").mkdir(parents=True, exist_ok=True)
    study = load_yaml(HERE / "study.yaml")
    for entry in study["runs"]:
        name = Path(entry["config"]).stem
        config = load_yaml(HERE / entry["config"])
        steps = 1 if name == "connector_untrained" else 2
        overrides = [*SMOKE, f"run_dir={out / 'runs' / name}", f"train.steps={steps}", f"train.ckpt_every={steps}"]
        if config["model"].get("init_from"):
            overrides.append(f"model.init_from={out / 'runs' / 'composed'}")
        (out / entry["config"]).write_text(yaml.safe_dump(apply_overrides(config, overrides), sort_keys=False))
    (out / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True))
    return out / "study.yaml"


def final_checkpoint(run_dir: str) -> Path:
    """The last checkpoint a finished run wrote."""
    folder = latest(Path(run_dir) / "checkpoints")
    if folder is None:
        raise SystemExit(f"{run_dir}: no checkpoint (did the run finish?)")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", type=Path, help="run every step with tiny step counts in this folder")
    parser.add_argument("--connector", default="linear", choices=["linear", "mlp"], help="the connector's kind")
    args = parser.parse_args()
    study_file = smoke_copy(args.smoke.resolve()) if args.smoke else HERE / "study.yaml"
    study = load_study(study_file)

    run_study(study, only=list(BASES))  # 1. A, B and the reference, from scratch
    composed = Path(study.configs["bridge_text"].model.init_from or "")
    if not (composed / "config.json").is_file():  # 2. one model in A's space, B's audio connected through text
        a, b = (final_checkpoint(study.configs[n].run_dir) for n in BASES[:2])
        command = [sys.executable, "-m", "omnibind.cli", "compose", str(composed), "--from", f"image,text={a}",
                   "--from", f"audio,text={b}", "--connector", args.connector]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)
    run_study(study)  # 3. the connectors: untrained, text alone, paired, both
    subprocess.run([sys.executable, "-m", "omnibind.cli", "study", "table", str(study_file)], check=True)


if __name__ == "__main__":
    main()
