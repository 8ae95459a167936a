"""The app's bundled files (icons), read through importlib.resources as ``app.resources``."""
