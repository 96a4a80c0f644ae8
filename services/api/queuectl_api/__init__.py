"""queuectl's HTTP API and web dashboard: `create_app()` is the Flask app factory gunicorn serves."""

from flask import Flask

from .config import MissingToken, UnsafeConfiguration, load_config

__all__ = ["MissingToken", "UnsafeConfiguration", "create_app"]


def create_app(test_config=None):
    """Build the app: the JSON API under /api/v1, the dashboard, /healthz and /metrics.

    Reads QUEUECTL_DB, QUEUECTL_API_TOKEN and the optional settings of config.load_config; `test_config` overrides
    them (and any Flask setting). Raises MissingToken when no token is configured, UnsafeConfiguration when a token
    is too short or the viewer token equals the operator's."""
    from . import api, audit, control, dashboard, errors, health, queues, schedules, security, storage, throttle

    app = Flask(__name__)
    app.config.from_mapping(load_config(test_config))
    app.json.sort_keys = False  # keep records in the order the store gives them
    storage.init_app(app)
    security.init_app(app)
    throttle.init_app(app)
    errors.init_app(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(control.blueprint)
    app.register_blueprint(audit.blueprint)
    app.register_blueprint(schedules.blueprint)
    app.register_blueprint(queues.blueprint)
    app.register_blueprint(dashboard.blueprint)
    app.register_blueprint(health.blueprint)
    return app
