"""The ONNX serving targets (issue 12), measured side by side with scikit-learn in the same run.

- image weight of the inference requirements for Python 3.14 on x86_64 and arm64 (what the Lambda base image
  runs), installed with `pip install --target` for that platform and measured as `du -sm` does (MiB);
- warm 1-row latency through the inference handler against bare scikit-learn `transform` + `predict` on
  in-memory objects, for each allow-listed estimator;
- the cold start of a 100-tree forest trained on 20,000 rows (onnxruntime builds large tree ensembles
  slower than joblib loads them).
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.run import BENCH, BUCKET, Context, Row, percentiles, timed, us
from tests.stack.images import ROOT, SITES, parse_dockerfile, run_commands

LAMBDA_PYTHON = "3.14"
PLATFORMS = {"x86_64": "x86_64", "arm64": "aarch64"}
LAMBDA_GLIBC_MINOR = 34  # Lambda's Python 3.14 image runs Amazon Linux 2023: glibc 2.34
SCIKIT_LEARN_STACK = {"scikit-learn", "scipy", "joblib", "threadpoolctl"}
# What served models before ONNX: the inference requirements with scikit-learn's stack instead of onnxruntime's.
ONNX_RUNTIME_STACK = {"onnxruntime", "flatbuffers", "protobuf", "packaging"}
SCIKIT_LEARN_PINS = ["scikit-learn==1.9.1", "scipy==1.17.1", "joblib==1.6.0", "threadpoolctl==3.8.0"]
ESTIMATORS = {
    "knn": {"knn": None},
    "sgd": {"sgd": None},
    "logistic_regression": {"logistic_regression": None},
    "random_forest": {"random_forest": {"n_estimators": [100]}},
}
FOREST_ROWS = 20_000


def requirement_pins(path: Path) -> list[str]:
    """The pinned lines of a requirements file (without comments and includes)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def package(pin: str) -> str:
    return pin.split("==")[0].strip().lower()


def platform_site(name: str, pins: list[str], machine: str, commands: list[str] | None = None) -> Path:
    """`pip install --target` of these pins as Lambda's Python 3.14 on this machine would get them, then the
    image's commands chained to its install (cached)."""
    key = [machine, LAMBDA_PYTHON, *sorted(pins), *(commands or [])]
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
    site = SITES / f"{name}-py{LAMBDA_PYTHON}-{machine}-{digest}"
    if not (site / ".complete").exists():
        shutil.rmtree(site, ignore_errors=True)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--only-binary=:all:", "--no-deps"]
        command += ["--python-version", LAMBDA_PYTHON, "--implementation", "cp"]
        for minor in range(LAMBDA_GLIBC_MINOR, 16, -1):  # every manylinux tag the image's glibc accepts
            command += ["--platform", f"manylinux_2_{minor}_{machine}"]
        command += ["--platform", f"manylinux2014_{machine}"]
        subprocess.run([*command, "--target", str(site), *pins], check=True)
        run_commands(commands or [], site)
        (site / ".complete").touch()
    return site


def du_megabytes(folder: Path) -> float:
    """Disk usage as `du -sm` reports it: allocated 512-byte blocks, each inode once, in MiB."""
    seen, blocks = set(), 0
    for path in [folder, *folder.rglob("*")]:
        stat = path.lstat()
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            blocks += stat.st_blocks
    return blocks * 512 / 2**20


def bench_inference_requirements() -> list[Row]:
    """The inference image's packages for Python 3.14, fully pinned (--no-deps: the file pins every package)."""
    ours = requirement_pins(ROOT / "deployment_model" / "inference" / "requirements.txt")
    trim = parse_dockerfile(ROOT / "deployment_model" / "inference" / "Dockerfile").install_commands
    baseline = [p for p in ours if package(p) not in ONNX_RUNTIME_STACK] + SCIKIT_LEARN_PINS
    forbidden = sorted(SCIKIT_LEARN_STACK & {package(p) for p in ours})
    rows = []
    for arch, platform in PLATFORMS.items():
        size = du_megabytes(platform_site("inference", ours, platform, trim))
        before = du_megabytes(platform_site("inference-scikit-learn", baseline, platform, trim))
        target, met = "<= 215 MiB, no scikit-learn/scipy/joblib", size <= 215 and not forbidden
        if arch != "x86_64":
            target, met = "report; no scikit-learn/scipy/joblib", not forbidden
        value = f"{size:,.0f} MiB" + (f" (holds {', '.join(forbidden)})" if forbidden else "")
        figure, compared = f"inference requirements, {arch}", f"scikit-learn way {before:,.0f} MiB"
        rows.append(Row("image weight, Python 3.14", figure, value, compared, target, met))
    train = ours + requirement_pins(ROOT / "deployment_model" / "train" / "requirements.txt")
    size = du_megabytes(platform_site("train", train, PLATFORMS["x86_64"]))
    rows.append(Row("image weight, Python 3.14", "train requirements, x86_64", f"{size:,.0f} MiB", "", "report"))
    return rows


def train_estimators(train: Any) -> dict[str, str]:
    """One published model per allow-listed estimator, trained through the train handler on the seed's data."""
    names = {}
    for estimator, candidates in ESTIMATORS.items():
        name = f"bench-{estimator.replace('_', '-')}"
        answer = train.lambda_handler({"filename_model": name, "candidates": candidates}, Context())
        assert answer["statusCode"] == 200, answer
        names[estimator] = name
    return names


def bench_warm_per_estimator(inference: Any, train: Any, scikit_learn_objects: Any, quick: bool) -> list[Row]:
    """1 row through the handler against bare scikit-learn transform + predict, per estimator."""
    rows, context = [], Context()
    row = np.array([[1.6, 4.9]])  # near the virginica boundary: every estimator does its full work
    repeat = 300 if quick else 3000
    for estimator, name in train_estimators(train).items():
        model, scaler = scikit_learn_objects(name)
        floor = percentiles(timed(lambda m=model, s=scaler: m.predict(s.transform(row)), repeat))
        event = {"x_test": row[0].tolist(), "filename_model": name}
        handler = percentiles(timed(lambda e=event: inference.lambda_handler(e, context), repeat))
        ratio = handler[0] / floor[0]
        rows.append(
            Row(
                "warm latency p50 / p99",
                f"1 row, {estimator}, through the handler",
                f"{us(handler[0])} / {us(handler[1])} ({ratio:.2f}x)",
                f"scikit-learn {us(floor[0])} / {us(floor[1])}",
                "<= 0.5x bare scikit-learn",
                ratio <= 0.5,
            )
        )
    return rows


def forest_csv(rows: int) -> bytes:
    """Iris-like data (petal width, length, species) with noise: a forest grows deep trees on it."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    rng = np.random.default_rng(1)
    picks = rng.integers(0, 150, rows)
    features = iris.data[picks][:, [3, 2]] + rng.normal(0, 0.1, (rows, 2))
    species = np.array(iris.target_names)[iris.target[picks]]
    lines = (f"{w:.3f},{length:.3f},{s}" for (w, length), s in zip(features, species, strict=True))
    return ("petal_width,petal_length,species\n" + "\n".join(lines)).encode()


def train_forest(train: Any, s3: Any) -> str:
    """A 100-tree random forest on 20,000 rows, published as model `bench-forest`."""
    s3.put_object(Bucket=BUCKET, Key="data/forest-20k.csv", Body=forest_csv(FOREST_ROWS))
    event = {
        "filename_model": "bench-forest",
        "data_key": "data/forest-20k.csv",
        "target_column": "species",
        "candidates": {"random_forest": {"n_estimators": [100], "max_depth": [None]}},
    }
    answer = train.lambda_handler(event, Context())
    assert answer["statusCode"] == 200, answer
    return "bench-forest"


def cold_start_runs(mode: str, path: str, endpoint: str, model: str, runs: int) -> list[dict[str, Any]]:
    """`runs` fresh processes answering one row of `model`, with only one image's packages on the path."""
    import json
    import os

    results = []
    for _ in range(runs):
        env = {**os.environ, "PYTHONPATH": path, "AWS_ENDPOINT_URL_S3": endpoint, "BENCH_MODEL": model}
        out = subprocess.run(
            [sys.executable, "-S", str(BENCH / "cold_start.py"), mode],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=BENCH,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def median_of(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)
