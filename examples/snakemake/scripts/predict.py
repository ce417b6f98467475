"""Classify the query points with a nearest-centroid model (model.json, or a folder holding it)."""

import csv
import json
import math
import os


def main(sm):
    path = sm.input.model
    if os.path.isdir(path):
        path = os.path.join(path, "model.json")
    with open(path) as f:
        model = json.load(f)
    centroids, features = model["centroids"], model["features"]
    with open(sm.input.queries, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(sm.output[0], "w") as out:
        out.write("id\tpredicted\tdistance\n")
        for r in rows:
            point = [float(r[c]) for c in features]
            best = min(centroids, key=lambda cls: math.dist(centroids[cls], point))
            out.write(f"{r['id']}\t{best}\t{math.dist(centroids[best], point):.4f}\n")


main(snakemake)  # noqa: F821 (injected by Snakemake)
