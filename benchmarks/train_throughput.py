"""Images/s, MFU and peak memory of full MAE pretraining steps: maelab vs Hugging Face ViTMAE
vs a textbook timm MAE. The harness is `maelab.bench` (see maelab/bench/throughput.py for the
method); this script is the same as `python -m maelab.bench`.

    python benchmarks/train_throughput.py                       # tiny (32 px) and ViT-B/16
    python benchmarks/train_throughput.py --configs tiny --memory --json out.json
    maelab bench                                                # a quick tiny run
"""

from maelab.bench.throughput import main

if __name__ == "__main__":
    main()
