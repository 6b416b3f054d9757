import sys

from core.cli import main

if __name__ == "__main__":  # not when another process imports this module (a Ray or multiprocessing worker)
    sys.exit(main())
