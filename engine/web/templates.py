"""REST: the local catalogue of approved templates."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from engine.models.template import Template, TemplateCategory
from engine.store import AlreadyExists
from engine.web.error_answers import ApiError, field_errors, not_found
from engine.web.keys import STORE, TEMPLATE_SYNC
from engine.web.validation import Body, parse_query, read_json
from engine.whatsapp.send_errors import SendError

routes = web.RouteTableDef()


class TemplateQuery(Body):
    category: TemplateCategory | None = None


async def _template_body(request: web.Request, **fixed: str) -> Template:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    for key, value in fixed.items():
        if data.setdefault(key, value) != value:
            raise ApiError(
                422, "invalid_request", f"{key}: {data[key]!r} differs from the path ({value!r})"
            )
    try:
        return Template.model_validate(data)
    except ValidationError as error:
        raise field_errors(error) from None


@routes.post("/api/v1/templates")
async def create_template(request: web.Request) -> web.Response:
    template = await _template_body(request)
    try:
        await request.app[STORE].write(lambda tx: tx.templates.create(template))
    except AlreadyExists:
        raise ApiError(
            409,
            "template_exists",
            f"template {template.name} ({template.language}) exists; PUT it to replace it",
        ) from None
    return web.json_response(template.model_dump(mode="json"), status=201)


@routes.get("/api/v1/templates")
async def list_templates(request: web.Request) -> web.Response:
    query = parse_query(request, TemplateQuery)
    async with request.app[STORE].read() as tx:
        templates = await tx.templates.list(category=query.category)
    return web.json_response({"templates": [t.model_dump(mode="json") for t in templates]})


@routes.get("/api/v1/templates/{name}/{language}")
async def get_template(request: web.Request) -> web.Response:
    name, language = request.match_info["name"], request.match_info["language"]
    async with request.app[STORE].read() as tx:
        template = await tx.templates.get(name, language)
        unknown = None if template is not None else await tx.templates.unknown(name, language)
        waiting = await tx.templates.waiting(name, language)
    if template is not None:
        return web.json_response(
            {**template.model_dump(mode="json"), "known": True, "waiting_messages": waiting}
        )
    if unknown is None:
        raise not_found(f"template {name} ({language})")
    # Meta told us of it in a webhook; its content comes with the next sync.
    return web.json_response(
        {
            "name": unknown.name,
            "language": unknown.language,
            "known": False,
            "id": unknown.meta_id,
            "status": unknown.status,
            "category": unknown.category,
            "quality_score": unknown.quality_score,
            "waiting_messages": waiting,
        }
    )


@routes.post("/api/v1/templates/sync")
async def sync_templates(request: web.Request) -> web.Response:
    syncer = request.app.get(TEMPLATE_SYNC)
    if syncer is None:
        raise ApiError(
            409,
            "template_sync_off",
            "templates are synced from Meta only with WA_WABA_ID set",
        )
    try:
        report = await syncer.sync()
    except SendError as error:
        raise ApiError(
            502,
            "graph_error",
            f"Meta's Graph API could not be read ({error}); the catalogue is unchanged",
        ) from None
    return web.json_response(report.as_json())


@routes.put("/api/v1/templates/{name}/{language}")
async def put_template(request: web.Request) -> web.Response:
    template = await _template_body(
        request, name=request.match_info["name"], language=request.match_info["language"]
    )
    created = await request.app[STORE].write(lambda tx: tx.templates.put(template))
    return web.json_response(template.model_dump(mode="json"), status=201 if created else 200)


@routes.delete("/api/v1/templates/{name}/{language}")
async def delete_template(request: web.Request) -> web.Response:
    name, language = request.match_info["name"], request.match_info["language"]
    deleted = await request.app[STORE].write(lambda tx: tx.templates.delete(name, language))
    if not deleted:
        raise not_found(f"template {name} ({language})")
    return web.Response(status=204)
