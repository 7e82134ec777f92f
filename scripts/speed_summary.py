"""Print training and prediction images/s of every finished job under the given results folders."""

import json
import sys
from pathlib import Path

for root in sys.argv[1:]:
    for config in sorted(Path(root).glob("runs/*/config.json")):
        c = json.loads(config.read_text())
        pred = [p["images_per_second"] for p in c["predictions"].values()]
        train = c.get("training", {})
        print(f"{root.split('/')[-1]:8s} {c['job']['method']:10s} {c['job']['train']:16s} "
              f"device={c['provenance']['device']}  train {train.get('train_images_per_second', 0):8.0f} img/s  "
              f"predict {sum(pred) / max(len(pred), 1):8.0f} img/s (mean over {len(pred)} domains)  "
              f"best val AUC {train.get('selection_score', float('nan')):.3f}")
