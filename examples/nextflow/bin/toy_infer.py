#!/usr/bin/env python3
"""Toy cell-type classifier for the example pipeline: a linear score per label.

The model folder is an omr version: `model_genes.txt` (one gene per line), `label_map.json`
(class index -> label) and `model.pt`, which for this toy holds JSON (`{"weights": [[...], ...]}`,
one row of gene weights per class) instead of real torch weights. Cells come as a TSV with a
`cell` column and one column per gene. Writes `cell<TAB>label<TAB>score`.
"""

import argparse
import csv
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model version folder")
    ap.add_argument("--cells", required=True, help="TSV: cell, then one column per gene")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    model = Path(a.model)
    genes = [g.strip() for g in (model / "model_genes.txt").read_text().splitlines() if g.strip()]
    labels = json.loads((model / "label_map.json").read_text())
    weights = json.loads((model / "model.pt").read_text())["weights"]
    if len(weights) != len(labels) or any(len(row) != len(genes) for row in weights):
        sys.stderr.write(f"toy_infer: {model}/model.pt does not match model_genes.txt and label_map.json\n")
        return 2
    with open(a.cells, newline="") as f, open(a.out, "w", newline="") as out:
        rows = csv.DictReader(f, delimiter="\t")
        missing = [g for g in genes if g not in (rows.fieldnames or [])]
        if missing:
            sys.stderr.write(f"toy_infer: {a.cells} lacks genes {missing}\n")
            return 2
        w = csv.writer(out, delimiter="\t", lineterminator="\n")
        w.writerow(["cell", "label", "score"])
        for row in rows:
            x = [float(row[g]) for g in genes]
            scores = [sum(wi * xi for wi, xi in zip(weights[k], x)) for k in range(len(weights))]
            best = max(range(len(scores)), key=scores.__getitem__)
            w.writerow([row["cell"], labels[str(best)], f"{scores[best]:.4f}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
