"""The files API, v1: upload (checked by purpose), list, read, delete; every route owner-scoped."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from core.errors import InvalidInput, TooLarge
from core.file_checks import check_upload
from core.files import public_file
from web.auth import api_owner
from web.deps import get_files, get_settings
from web.request_input import int_arg

bp = Blueprint("files", __name__, url_prefix="/v1/files")


@bp.before_request
def allow_larger_bodies():
    """Uploads get their own size limit (the JSON routes keep the small one)."""
    limit = get_settings().max_upload_bytes
    # Refuse on the declared length before reading a byte; max_content_length covers chunked bodies.
    if request.content_length and request.content_length > limit:
        raise TooLarge(f"Uploads are limited to {limit} bytes", param="file")
    request.max_content_length = limit


@bp.post("")
def upload():
    """multipart `file` and `purpose` -> 201 file object; 400 naming what is wrong; 413 too large."""
    owner = api_owner()
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput("Send the file as multipart form field 'file'", param="file")
    purpose = request.form.get("purpose", "")
    data = upload.read()
    check_upload(purpose, data)
    record = get_files().create(owner, upload.filename or "upload", purpose, data)
    return jsonify(public_file(record)), 201


@bp.get("")
def list_files():
    """Newest first by default; `after`, `limit` and `order` page through them as OpenAI's do (a
    client that follows `has_more` stops at the last page)."""
    owner = api_owner()
    purpose = request.args.get("purpose") or None
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be asc or desc", param="order")
    records, more = get_files().page(owner, purpose, int_arg("limit", 10_000, 1, 10_000),
                                     request.args.get("after") or None, newest_first=order == "desc")
    data = [public_file(f) for f in records]
    return jsonify({"object": "list", "data": data, "has_more": more,
                    "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})


@bp.get("/<file_id>")
def get_file(file_id):
    return jsonify(public_file(get_files().get(file_id, api_owner())))


@bp.get("/<file_id>/content")
def file_content(file_id):
    """The file's bytes (batch output and error files included)."""
    data = get_files().read(file_id, api_owner())
    return Response(data, mimetype="application/octet-stream")


@bp.delete("/<file_id>")
def delete_file(file_id):
    get_files().delete(file_id, api_owner())
    return jsonify({"id": file_id, "object": "file", "deleted": True})
