"""``python -m riskengine ARGS`` runs the command line, like the ``riskengine`` console script."""

from riskengine.cli import main

if __name__ == "__main__":
    main()
