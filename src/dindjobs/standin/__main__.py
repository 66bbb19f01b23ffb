"""``python3 -m dindjobs.standin``: run the Jenkins stand-in until SIGTERM."""

import sys

from dindjobs.standin.cli import main

if __name__ == "__main__":
    sys.exit(main())
