"""Analysis of the worlds: what a mask shares, how much each level explains, exact answers."""
