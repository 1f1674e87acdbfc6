"""The public tip line of `chaintrace serve` (no API key): ``POST /v1/tips`` (JSON), ``POST
/v1/tips/followup`` and ``POST /v1/tips/status`` (by receipt code), and the form at ``/tip`` (English) and
``/tip?lang=ar`` (Arabic, right-to-left; plain HTML and CSS, no script, no CDN).

Tips are validated, screened against the intel registry, sealed to the analysts' public key and stored
(:class:`chaintrace.intake.TipStore`); the response carries only the receipt code. Abuse is limited per
client with :class:`chaintrace.intake.TipLimiter` (keyed hash rotated daily, no IP stored). The router reads
``app.state.ws`` (the workspace) like the rest of the service.
"""
from __future__ import annotations

import base64
import html
import json
import os

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from chaintrace.errors import UserError
from chaintrace.intake import MAX_BODY, TipError, TipLimiter, TipStore, screen_tip
from chaintrace.intake.validate import CONTENT_TYPES, MAX_ATTACHMENT
from chaintrace.store.workspace import Workspace

# Not in the service's OpenAPI schema: a tip's validity (per-chain address checksums, attachment limits) cannot be
# stated in JSON Schema, so a schema would promise acceptance of tips that are rejected (and the reverse); the
# public tip line is documented in docs/intake.md instead.
router = APIRouter(tags=["tips"], include_in_schema=False)


def _doc(*codes: int, html_: bool = False) -> dict:
    """OpenAPI ``responses`` of the tip endpoints (the error body is the service's error object)."""
    what = {400: "malformed JSON or form", 404: "unknown receipt code", 413: "body too large",
            422: "invalid tip (the field is named)", 429: "too many requests from this client (Retry-After)"}
    ctype = "text/html" if html_ else "application/json"
    schema = {"type": "string"} if html_ else {"type": "object", "properties": {
        "error": {"type": "string"}, "status": {"type": "integer"}, "field": {"type": ["string", "null"]},
        "message": {"type": "string"}}}
    return {c: {"description": what[c], "content": {ctype: {"schema": schema}}} for c in codes}

_SECURITY = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                        "base-uri 'none'; frame-ancestors 'none'",
             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
             "X-Frame-Options": "DENY"}
ENV_RATE = "CHAINTRACE_TIP_RATE"      # "capacity/per_hour", default "5/20"


def _state(request: Request) -> tuple[TipStore, TipLimiter]:
    st = request.app.state
    if getattr(st, "tip_store", None) is None:
        ws = getattr(st, "ws", None)
        st.tip_store = TipStore(ws if isinstance(ws, Workspace) else Workspace(ws))
    if getattr(st, "tip_limiter", None) is None:
        cap, per_hour = (float(x) for x in os.environ.get(ENV_RATE, "5/20").split("/"))
        st.tip_limiter = TipLimiter(cap, per_hour)
    return st.tip_store, st.tip_limiter


def _screen(request: Request, store: TipStore):
    """Screening on arrival with the service's Screener (one snapshot for every request)."""
    st = request.app.state
    if getattr(st, "screener", None) is None:
        from chaintrace.screen import Screener

        st.screener = Screener(store.ws)
    screener = st.screener
    return lambda t: screen_tip(store.ws, t, screener)


def _err(status: int, error: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": error, "status": status, "field": field, "message": message},
                        status_code=status, headers=headers)


async def _body(request: Request, limit: int = MAX_BODY) -> bytes | JSONResponse:
    cl = request.headers.get("content-length")
    if cl is not None and (not cl.isdigit() or int(cl) > limit):
        return _err(413, "too_large", f"request body over {limit} bytes")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            return _err(413, "too_large", f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _limited(request: Request, limiter: TipLimiter) -> JSONResponse | None:
    wait = limiter.take(request.client.host if request.client else "unknown")
    if wait:
        return _err(429, "rate_limited", f"too many tips from this client; retry in {int(wait) + 1} s",
                    headers={"Retry-After": str(int(wait) + 1)})
    return None


async def _json(request: Request):
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return _err(400, "malformed_json", f"body is not UTF-8 JSON ({str(e)[:120]})", "body")


@router.post("/v1/tips", status_code=201, responses=_doc(400, 413, 422, 429))
async def post_tip(request: Request):
    """Submit a tip (JSON). No API key. Returns the receipt code (keep it to add information later)."""
    store, limiter = _state(request)
    if (r := _limited(request, limiter)) is not None:     # every request counts, junk included
        return r
    data = await _json(request)
    if isinstance(data, JSONResponse):
        return data
    try:
        out = store.submit(data, screen=_screen(request, store))
    except TipError as e:
        return _err(422, "invalid_tip", e.message, e.field)
    return JSONResponse({"status": "received", "receipt": out["receipt"],
                         "message": "Keep this receipt code: it lets you add information without identifying "
                                    "yourself (POST /v1/tips/followup)."}, status_code=201)


async def _with_receipt(request: Request):
    """(store, body) of a request that names a receipt code, or the error answer (rate limit first: every
    request counts, junk included; then a JSON object with a string ``receipt``)."""
    store, limiter = _state(request)
    if (r := _limited(request, limiter)) is not None:
        return r
    data = await _json(request)
    if isinstance(data, JSONResponse):
        return data
    if not isinstance(data, dict) or not isinstance(data.get("receipt"), str):
        return _err(422, "invalid_tip", "receipt code required", "receipt")
    return store, data


@router.post("/v1/tips/followup", status_code=201, responses=_doc(400, 404, 413, 422, 429))
async def post_followup(request: Request):
    """Add information to a tip: the tip fields plus ``receipt``."""
    got = await _with_receipt(request)
    if isinstance(got, JSONResponse):
        return got
    store, data = got
    receipt = data.pop("receipt")
    try:
        out = store.follow_up(receipt, data)
    except TipError as e:
        return _err(422, "invalid_tip", e.message, e.field)
    except UserError as e:
        return _err(404, "unknown_receipt", str(e), "receipt")
    return JSONResponse({"status": "received", "followup": out["followup"]}, status_code=201)


@router.post("/v1/tips/status", responses=_doc(400, 404, 413, 422, 429))
async def post_status(request: Request):
    """Where a tip stands (received / triaged), by receipt code (in the body, never in a URL)."""
    got = await _with_receipt(request)
    if isinstance(got, JSONResponse):
        return got
    store, data = got
    try:
        return store.status(data["receipt"])
    except UserError as e:
        return _err(404, "unknown_receipt", str(e), "receipt")


# ----------------------------------------------------------------------------------------------- the form

TEXT = {
    "en": {"title": "Report stolen or laundered cryptocurrency", "dir": "ltr",
           "intro": "Tell us about addresses or transactions linked to thefts, hacks or sanctions evasion. Your "
                    "report is encrypted on arrival; only our analysts can read it. You may stay anonymous.",
           "addresses": "Addresses (one per line; chain:address if ambiguous, e.g. btc:1A1z...)",
           "txids": "Transaction ids (one per line)", "amount": "Amount", "asset": "Asset (BTC, ETH, USDT...)",
           "time": "When (YYYY-MM-DD)", "narrative": "What happened", "contact": "Contact (optional)",
           "anonymous": "Stay anonymous (no contact)", "attachment": f"Attachment (at most {MAX_ATTACHMENT // 1024} KiB)",
           "submit": "Send encrypted report", "other": "العربية", "other_lang": "ar",
           "thanks": "Thank you. Your report was received and encrypted.",
           "receipt": "Your receipt code (keep it to add information later without identifying yourself):",
           "error": "The report could not be accepted:", "back": "Back to the form"},
    "ar": {"title": "الإبلاغ عن عملات مشفرة مسروقة أو مغسولة", "dir": "rtl",
           "intro": "أخبرنا عن عناوين أو معاملات مرتبطة بسرقات أو اختراقات أو التهرب من العقوبات. يُشفَّر بلاغك فور "
                    "وصوله، ولا يقرؤه إلا محللونا. يمكنك البقاء مجهول الهوية.",
           "addresses": "العناوين (عنوان في كل سطر؛ السلسلة:العنوان عند الالتباس، مثل btc:1A1z...)",
           "txids": "معرّفات المعاملات (واحد في كل سطر)", "amount": "المبلغ", "asset": "الأصل (BTC، ETH، USDT...)",
           "time": "التاريخ (YYYY-MM-DD)", "narrative": "ماذا حدث", "contact": "وسيلة التواصل (اختياري)",
           "anonymous": "البقاء مجهول الهوية (دون وسيلة تواصل)",
           "attachment": f"مرفق (بحد أقصى {MAX_ATTACHMENT // 1024} كيلوبايت)",
           "submit": "إرسال البلاغ مشفراً", "other": "English", "other_lang": "en",
           "thanks": "شكراً لك. تم استلام بلاغك وتشفيره.",
           "receipt": "رمز الإيصال (احتفظ به لإضافة معلومات لاحقاً دون الكشف عن هويتك):",
           "error": "تعذّر قبول البلاغ:", "back": "العودة إلى النموذج"},
}
_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Naskh Arabic",sans-serif;max-width:44rem;
margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}label{display:block;margin-top:1rem;font-weight:600}
input[type=text],textarea{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #888;border-radius:4px;
font:inherit}textarea{min-height:6rem}.row{display:flex;gap:1rem}.row>div{flex:1}button{margin-top:1.5rem;
padding:.6rem 1.2rem;font:inherit;background:#0b5;color:#fff;border:0;border-radius:4px}.code{font-family:monospace;
font-size:1.3rem;direction:ltr;unicode-bidi:embed;background:#eee;padding:.5rem}.err{color:#b00}
[dir=rtl] input[type=text].ltr,[dir=rtl] textarea.ltr{direction:ltr;text-align:left}"""


def _page(lang: str, body: str, status: int = 200) -> HTMLResponse:
    t = TEXT[lang]
    doc = (f'<!doctype html><html lang="{lang}" dir="{t["dir"]}"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(t["title"])}</title>'
           f'<style>{_CSS}</style></head><body><h1>{html.escape(t["title"])}</h1>{body}</body></html>')
    return HTMLResponse(doc, status_code=status, headers=_SECURITY)


def _lang(request: Request) -> str:
    return "ar" if request.query_params.get("lang") == "ar" else "en"


@router.get("/tip", response_class=HTMLResponse)
async def tip_form(request: Request):
    """The tip form (``?lang=ar`` for Arabic, right-to-left)."""
    lang = _lang(request)
    t = {k: html.escape(v) for k, v in TEXT[lang].items()}
    body = (f'<p>{t["intro"]}</p><p><a href="/tip?lang={t["other_lang"]}">{t["other"]}</a></p>'
            f'<form method="post" action="/tip?lang={lang}" enctype="multipart/form-data">'
            f'<label for="addresses">{t["addresses"]}</label><textarea class="ltr" id="addresses" name="addresses"></textarea>'
            f'<label for="txids">{t["txids"]}</label><textarea class="ltr" id="txids" name="txids"></textarea>'
            f'<div class="row"><div><label for="amount">{t["amount"]}</label><input class="ltr" type="text" id="amount" name="amount"></div>'
            f'<div><label for="asset">{t["asset"]}</label><input class="ltr" type="text" id="asset" name="asset"></div>'
            f'<div><label for="time">{t["time"]}</label><input class="ltr" type="text" id="time" name="time"></div></div>'
            f'<label for="narrative">{t["narrative"]}</label><textarea id="narrative" name="narrative"></textarea>'
            f'<label for="contact">{t["contact"]}</label><input type="text" id="contact" name="contact">'
            f'<label><input type="checkbox" name="anonymous" value="1" checked> {t["anonymous"]}</label>'
            f'<label for="attachment">{t["attachment"]}</label><input type="file" id="attachment" name="attachment" '
            f'accept="{",".join(sorted(CONTENT_TYPES))}">'
            f'<button type="submit">{t["submit"]}</button></form>')
    return _page(lang, body)


def _lines(v) -> list[str]:
    return [x.strip() for x in str(v or "").splitlines() if x.strip()]


def _addr_item(line: str):
    chain, sep, a = line.partition(":")
    if sep and chain.isalpha() and len(chain) <= 12 and not chain.lower().startswith(("bc", "0x", "ltc")):
        return {"chain": chain.lower(), "address": a.strip()}
    return line


async def _form_tip(request: Request) -> dict:
    form = await request.form(max_files=1, max_fields=20, max_part_size=MAX_ATTACHMENT + 1024)
    tip: dict = {"lang": _lang(request)}
    if a := _lines(form.get("addresses")):
        tip["addresses"] = [_addr_item(x) for x in a]
    if t := _lines(form.get("txids")):
        tip["txids"] = t
    if form.get("amount"):
        tip["amounts"] = [{"value": str(form.get("amount")).strip(), "asset": str(form.get("asset") or "").strip()}]
    for k in ("time", "narrative", "contact"):
        v = form.get(k)
        if isinstance(v, str) and v.strip():
            tip[k] = v.strip() if k != "narrative" else v.replace("\r\n", "\n")
    tip["anonymous"] = bool(form.get("anonymous")) and not tip.get("contact")
    f = form.get("attachment")
    if f is not None and not isinstance(f, str) and f.filename:
        data = await f.read(MAX_ATTACHMENT + 1)
        tip["attachments"] = [{"name": f.filename, "content_type": f.content_type or "application/octet-stream",
                               "data": base64.b64encode(data).decode()}]
    return tip


@router.post("/tip", response_class=HTMLResponse, status_code=201, responses=_doc(400, 413, 422, 429, html_=True))
async def tip_form_post(request: Request):
    """The form's submission: the same validation, sealing and receipt as POST /v1/tips, answered in HTML."""
    lang = _lang(request)
    t = TEXT[lang]
    store, limiter = _state(request)
    cl = request.headers.get("content-length")
    if cl is not None and (not cl.isdigit() or int(cl) > MAX_BODY):
        return _page(lang, f'<p class="err">{html.escape(t["error"])} &gt; {MAX_BODY} bytes</p>', 413)
    if limiter.take(request.client.host if request.client else "unknown"):
        return _page(lang, f'<p class="err">{html.escape(t["error"])} 429</p>', 429)
    try:
        tip = await _form_tip(request)
        out = store.submit(tip, screen=_screen(request, store))
    except TipError as e:
        return _page(lang, f'<p class="err">{html.escape(t["error"])} {html.escape(e.field)}: {html.escape(e.message)}</p>'
                           f'<p><a href="/tip?lang={lang}">{html.escape(t["back"])}</a></p>', 422)
    except Exception as e:  # malformed multipart bodies (python-multipart raises its own errors)
        if isinstance(e, UserError):
            raise
        return _page(lang, f'<p class="err">{html.escape(t["error"])} {html.escape(type(e).__name__)}</p>', 400)
    return _page(lang, f'<p>{html.escape(t["thanks"])}</p><p>{html.escape(t["receipt"])}</p>'
                       f'<p class="code">{html.escape(out["receipt"])}</p>', 201)


def create_tip_app(ws: Workspace | str | None = None) -> FastAPI:
    """A service with only the tip line (for a separate public host; `chaintrace serve` mounts the same
    router). Workspace: `ws`, else $CHAINTRACE_DATA."""
    app = FastAPI(title="chaintrace tip line", docs_url=None, redoc_url=None)
    app.state.ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    app.include_router(router)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    return app
