"""`python -m maelab.bench`: the training-throughput benchmark (see maelab.bench.throughput)."""

from maelab.bench.throughput import main

main()
