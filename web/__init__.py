"""The Flask front: JSON API under /v1 and HTML pages; it enqueues by task name and never imports torch."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, request

from core import logs
from core.config import Settings


def create_app(settings: Settings | None = None, test_config: dict | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
        PERMANENT_SESSION_LIFETIME=timedelta(days=7),
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False  # keep fields in the order the API documents
    app.extensions["aigc_settings"] = settings

    from web import (api, campaigns_api, campaigns_ui, chat_ui, errors, files_api, finetune_ui, gan_ui, metrics_api,
                     openai_api, openai_batches, openai_finetuning, openai_images, images_ui, system, ui, webhooks_api)

    errors.register(app)
    # Log lines about a job say which (core/logs.py); AIGC_LOG_FORMAT=json makes each a JSON object.
    from flask.logging import default_handler

    logs.apply(default_handler, settings.log_format, "[%(asctime)s] %(levelname)s in %(module)s: %(message)s")

    @app.before_request
    def note_the_job():
        logs.forget()  # a kept-alive connection serves several requests in one greenlet
        for name in ("job_id", "campaign_id", "batch_id"):
            if request.view_args and request.view_args.get(name):
                logs.note(job_id=request.view_args[name])

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        # Pages load only their own scripts and styles; JSON data blocks are not scripts.
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        return resp

    app.register_blueprint(system.bp)
    app.register_blueprint(metrics_api.bp)
    app.register_blueprint(webhooks_api.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(files_api.bp)
    app.register_blueprint(campaigns_api.bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(openai_batches.bp)
    app.register_blueprint(openai_finetuning.bp)
    app.register_blueprint(openai_images.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(campaigns_ui.bp)
    app.register_blueprint(chat_ui.bp)
    app.register_blueprint(finetune_ui.bp)
    app.register_blueprint(gan_ui.bp)
    app.register_blueprint(images_ui.bp)
    return app
