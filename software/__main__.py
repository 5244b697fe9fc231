"""`python -m rowmix` (what `torchrun -m rowmix ...` launches on every process)."""

from .cli import main

main()
