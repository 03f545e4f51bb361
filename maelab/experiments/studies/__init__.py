"""The studies maelab decides, one declaration per module (`maelab.experiments.declaration`):

* `world`: Kong et al. and Zhang et al. on the study world (`maelab demo`; `--full` adds the
  mask-ratio sweep);
* `real_images`: the claims that need no latents, on real images (`maelab demo --full`);
* `cao_q4`: Cao Q4, the decoder's role, from a decoder-depth sweep (`maelab analyze decoder`).

Each row's margin is its readout's (`declaration.MARGINS`, docs/theory.md's margin table).
"""
