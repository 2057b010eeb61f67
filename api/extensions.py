"""Extensions created unbound here and bound to an app in create_app."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every model."""


# expire_on_commit=False: a request keeps using the account it loaded after a commit ends its
# read snapshot (write transactions start fresh so SQLite can take its write lock up front).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
