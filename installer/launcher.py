"""The frozen bundle's one entry script: run as ``studio-app`` it opens the window, as ``studio``
it is the command line. On Linux studio-app is a symlink to the same executable, so the bundle
carries its Python archive once; Windows and macOS get a second, windowed executable.
"""

import multiprocessing
import sys
from pathlib import Path

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if Path(sys.argv[0]).stem.lower() == "studio-app":
        from studio.app import main
    else:
        from studio.cli import main
    main()
