"""The web page at ``/`` (plain HTML/CSS/JS from package resources: no CDN, works offline) and an
offline rendering of the OpenAPI schema at ``/docs``."""
from __future__ import annotations

import html
import json
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from serkit.inference import class_colors

#: the page's assets: a fixed table (a request names one of these, never a path)
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}


def _resource(name: str) -> str:
    return (files("serkit.serve") / "static" / name).read_text(encoding="utf-8")


def page_config(predictor, cfg, classes, token_required: bool) -> dict:
    """What the page needs to know: classes and their colours (the reports' colours), limits."""
    return {"model": predictor.name, "classes": list(classes), "colors": class_colors(classes),
            "clip_max_s": float(predictor.segments.clip_max_s), "max_upload_bytes": cfg.max_upload_bytes,
            "max_audio_s": cfg.max_audio_s, "token_required": token_required, "api": "/v1"}


def install(app: FastAPI, predictor, cfg, classes) -> None:
    conf = json.dumps(page_config(predictor, cfg, classes, bool(app.state.token)))
    index = _resource("index.html").replace("{{CONFIG}}", conf.replace("<", "\\u003c")) \
                                   .replace("{{MODEL}}", html.escape(predictor.name))
    assets = {name: (_resource(name), media) for name, media in ASSETS.items()}
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

    @app.get("/", include_in_schema=False)
    async def root() -> HTMLResponse:
        return HTMLResponse(index, headers={**headers, "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; connect-src 'self'")})

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in assets:
            from serkit.serve.errors import ApiError

            raise ApiError(404, "not_found", "no such page asset")
        text, media = assets[name]
        return Response(text, media_type=f"{media}; charset=utf-8", headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(render_docs(app.openapi()))


def render_docs(schema: dict) -> str:
    """The OpenAPI schema as a plain HTML page (Swagger UI would need a CDN)."""
    e = html.escape
    out = [f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(schema['info']['title'])} API</title>",
           "<link rel=stylesheet href=/static/app.css><main class=docs>",
           f"<h1>{e(schema['info']['title'])} API {e(schema['info']['version'])}</h1>",
           f"<p>{e(schema['info'].get('description', ''))}</p>",
           "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a>. The page: <a href=/>/</a>.</p>"]
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            out.append(f"<section><h2><code>{e(method.upper())} {e(path)}</code></h2>"
                       f"<p>{e(op.get('summary', ''))}</p>")
            params = op.get("parameters") or []
            if params:
                out.append("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>")
                for p in params:
                    out.append(f"<tr><td><code>{e(p['name'])}</code></td><td>{e(p['in'])}</td>"
                               f"<td>{e(p.get('description', ''))}</td></tr>")
                out.append("</table>")
            body = op.get("requestBody")
            if body:
                out.append(f"<p><b>body</b> ({e(', '.join(body.get('content', {})))}): "
                           f"{e(body.get('description', ''))}</p>")
            out.append("<table><tr><th>status</th><th>meaning</th></tr>")
            for status, r in (op.get("responses") or {}).items():
                out.append(f"<tr><td>{e(status)}</td><td>{e(r.get('description', ''))}</td></tr>")
            out.append("</table></section>")
    out.append("</main></html>")
    return "\n".join(out)
