"""``python -m logwarden`` runs the command line."""
import sys

from logwarden.cli import main

sys.exit(main())
