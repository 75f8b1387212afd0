"""fastnet's benchmark framework: ``python -m bench all|echo|frame|resp|idle``
from the repository root (see bench/__main__.py and the README)."""
