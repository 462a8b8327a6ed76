"""``python -m ledgerlink.cli``: the same as the ``ledgerlink`` command."""

import sys

from ledgerlink.cli import main

if __name__ == "__main__":  # importing the module (the asset test imports every module) runs nothing
    sys.exit(main())
