"""PyInstaller runtime hook: runs before the app, keeps every write out of the install folder."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("NUMBA_CACHE_DIR"):
    from studio.core.paths import user_cache_dir

    os.environ["NUMBA_CACHE_DIR"] = str(user_cache_dir() / "numba")
# Bundled modules have relative source paths; numba's in-tree locator would resolve them against
# the working directory and could write __pycache__ there (inside the bundle, if that is the cwd).
os.environ.setdefault("NUMBA_CACHE_LOCATOR_CLASSES", "UserProvidedCacheLocator,UserWideCacheLocator")
