"""Train a nearest-(shrunken-)centroid classifier in pure Python and write it as a model folder.

The folder (model.json, metrics.json, labels.txt) is what the omr_register rule publishes.
`shrinkage` pulls each class centroid towards the overall mean (0 = plain nearest centroid),
so a different value gives a different model and a different package digest.
"""

import csv
import json
import math
import os


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def train(rows, features, shrinkage):
    overall = [sum(float(r[c]) for r in rows) / len(rows) for c in features]
    classes = sorted({r["species"] for r in rows})
    centroids = {}
    for cls in classes:
        mine = [r for r in rows if r["species"] == cls]
        mean = [sum(float(r[c]) for r in mine) / len(mine) for c in features]
        centroids[cls] = [round(m + shrinkage * (o - m), 6) for m, o in zip(mean, overall)]
    return centroids


def predict(centroids, point):
    return min(centroids, key=lambda cls: math.dist(centroids[cls], point))


def main(sm):
    rows = read_rows(sm.input.data)
    features = ["petal_length", "petal_width"]
    shrinkage = float(sm.params.shrinkage)
    centroids = train(rows, features, shrinkage)
    correct = sum(predict(centroids, [float(r[c]) for c in features]) == r["species"] for r in rows)
    out = sm.output.model
    os.makedirs(out, exist_ok=True)
    model = {"kind": "nearest-centroid", "features": features, "classes": sorted(centroids),
             "centroids": centroids, "shrinkage": shrinkage}
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(model, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"train_accuracy": round(correct / len(rows), 4), "n_train": len(rows)}, f, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("".join(f"{c}\n" for c in sorted(centroids)))


main(snakemake)  # noqa: F821 (injected by Snakemake)
