"""The gunicorn target `wsgi:app`: the one place an app is built at import time."""

import sys

from api import create_app
from api.config import ConfigError

try:
    app = create_app()
except ConfigError as error:  # one clear line per bad variable, no traceback
    sys.exit("configuration error: " + "; ".join(error.problems))
