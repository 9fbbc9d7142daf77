"""Prepare the data: scikit-learn's wine data set, split into training and held-out rows.

The rows go to CSV files on platform storage (mounted at ``--out``); the split is
stratified and seeded, so every run prepares the same rows.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split


def write_rows(
    path: Path, header: list[str], features: list[list[float]], labels: list[int]
) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*header, "label"])
        for row, label in zip(features, labels, strict=True):
            writer.writerow([*row, label])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the data folder")
    parser.add_argument("--held-out", type=float, default=0.25, help="share kept for testing")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    wine = load_wine()
    features = [str(name) for name in wine.feature_names]
    x_train, x_test, y_train, y_test = train_test_split(
        wine.data.tolist(),
        wine.target.tolist(),
        test_size=args.held_out,
        random_state=args.seed,
        stratify=wine.target,
    )
    print(
        f"wine: {len(wine.data)} rows, {len(features)} features,"
        f" classes {', '.join(str(c) for c in wine.target_names)}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_rows(args.out / "train.csv", features, x_train, y_train)
    write_rows(args.out / "test.csv", features, x_test, y_test)
    print(f"wrote {len(x_train)} training rows and {len(x_test)} held-out rows to {args.out}")


if __name__ == "__main__":
    main()
