"""The widget in a real browser: script tag -> click -> annotate -> send -> stored report."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image

from fieldreport.storage.projects import NewProject, set_origins
from fieldreport.web.bundle import load_bundle
from tests.conftest import RunningServer
from tests.web.conftest import PageServer, snap
from tests.web.pages import STYLE, script_tag, shop_page

VIEWPORT = {"width": 1280, "height": 800}


async def _allow(server: RunningServer, project: NewProject, origin: str) -> None:
    async with server.state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[origin], remove=[])


async def _disallow(server: RunningServer, project: NewProject, origin: str) -> None:
    async with server.state.db.write() as conn:
        await set_origins(conn, project.project.id, add=[], remove=[origin])


async def _drag(
    page: Any, box: dict[str, float], start: tuple[float, float], end: tuple[float, float]
) -> None:
    await page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    await page.mouse.down()
    await page.mouse.move(
        box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=8
    )
    await page.mouse.up()


async def _reports(client: httpx.AsyncClient, project: NewProject) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    listing = (await client.get("/api/v1/reports", headers=auth)).json()
    return [
        (await client.get(f"/api/v1/reports/{r['reportid']}", headers=auth)).json()
        for r in listing["reports"]
    ]


async def _screenshot(
    client: httpx.AsyncClient, project: NewProject, report: dict[str, Any]
) -> Image.Image:
    auth = {"Authorization": f"Bearer {project.secret_key}"}
    resp = await client.get(report["screenshot"]["url"], headers=auth)
    assert resp.status_code == 200
    assert resp.content.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(resp.content))
    image.load()  # a truncated or corrupt PNG fails here
    return image.convert("RGB")


def _count(image: Image.Image, predicate: Any, box: tuple[int, int, int, int] | None = None) -> int:
    region = image.crop(box) if box else image
    return sum(1 for px in region.get_flattened_data() if predicate(px))


def _is_ink(px: tuple[int, int, int]) -> bool:  # the annotation red, #e5484d
    r, g, b = px
    return abs(r - 0xE5) < 20 and abs(g - 0x48) < 25 and abs(b - 0x4D) < 25


@pytest.mark.parametrize("backend", ["sqlite+local", "postgresql+s3"])
async def test_annotate_and_send_a_report(
    backend: str,
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key))
    page = await browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(page_server.url + "/")

    launcher = page.get_by_role("button", name="Report a bug")
    await launcher.wait_for()
    await snap(page, "button")
    await launcher.click()

    dialog = page.get_by_role("dialog", name="Report a bug")
    await dialog.wait_for()
    overlay = dialog.get_by_role("img", name="Screenshot annotations")
    box = await overlay.bounding_box()
    assert box and box["width"] > 300
    # A box around the vase's price, an arrow at it, and two numbered notes.
    await _drag(page, box, (0.62, 0.36), (0.86, 0.50))
    await dialog.get_by_role("button", name="Arrow", exact=True).click()
    await _drag(page, box, (0.45, 0.75), (0.62, 0.52))
    await dialog.get_by_role("button", name="Note", exact=True).click()
    await page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.38)
    await dialog.get_by_role("textbox", name="Note 1").fill("The price is negative")
    await dialog.get_by_role("button", name="+ Add a note").click()
    await dialog.get_by_role("textbox", name="Note 2").fill("Total ignores the coupon")
    await dialog.get_by_label("Describe the problem").fill(
        "The vase costs -12.50 €.\nI expected a positive price."
    )
    await dialog.get_by_label("Your email").fill("jane@example.com")
    await snap(page, "annotate")

    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you! Your report was sent").wait_for()
    await snap(page, "sent")
    assert errors == []

    [report] = await _reports(client, project)
    # Browsers send form text with CRLF line breaks (the HTML form-data rules).
    comment = report["sendercomment"].replace("\r\n", "\n")
    assert comment == "The vase costs -12.50 €.\nI expected a positive price."
    assert report["subject"] == "Bug report: The vase costs -12.50 €."
    assert report["notelist"] == ["The price is negative", "Total ignores the coupon"]
    assert report["senderemail"] == "jane@example.com"
    assert report["referer"] == page_server.url + "/"
    assert "Chrome" in report["browser"]
    assert report["recording"] in (None, "")
    assert '"viewport"' in report["additionalinfo"]

    image = await _screenshot(client, project, report)
    assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
    # The page was captured (the dark header, the green "Add to cart" buttons)...
    assert image.getpixel((10, 10)) == (17, 24, 39)
    assert _count(image, lambda p: p[1] > 140 and p[0] < 30 and p[2] < 140) > 500
    # ...the annotations were burned in (box edges, arrow, note pins)...
    assert _count(image, _is_ink) > 2000
    # ...and the widget itself is not in the picture (its blue button, bottom right).
    assert _count(image, lambda p: p == (37, 99, 235), (1080, 700, 1280, 800)) == 0


async def test_keyboard_only_focus_trap_and_labels(
    server: RunningServer, project: NewProject, page_server: PageServer, browser: Any
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(
        script_tag(server.url, project.public_key, position="bottom-left", label="Feedback")
    )
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    launcher = page.get_by_role("button", name="Feedback")
    await launcher.focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Feedback")
    await dialog.wait_for()
    # Focus starts in the comment; Tab cycles inside the dialog and never reaches the page.
    focused = "document.querySelector('[data-fieldreport]').shadowRoot.activeElement?.id || ''"
    assert await page.evaluate(focused) == "fr-comment"
    seen = set()
    for _ in range(30):
        await page.keyboard.press("Tab")
        inside = await page.evaluate(
            "(() => { const a = document.activeElement;"
            " return a && a.matches('[data-fieldreport]'); })()"
        )
        assert inside, "focus escaped the dialog"
        seen.add(
            await page.evaluate(
                focused + " || document.querySelector('[data-fieldreport]')"
                ".shadowRoot.activeElement?.textContent"
            )
        )
    assert {"fr-comment", "fr-email", "Send report", "Cancel"} <= seen
    # A note can be placed without a pointer.
    await dialog.get_by_role("button", name="+ Add a note").focus()
    await page.keyboard.press("Enter")
    assert await page.evaluate(focused) == "fr-note-1"
    # An empty note is not sent silently: the user is told and taken back to it.
    await dialog.get_by_label("Describe the problem").fill("Keyboard only")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Note 1 is empty").wait_for()
    assert await page.evaluate(focused) == "fr-note-1"
    # Escape closes and gives the focus back to the launcher.
    await page.keyboard.press("Escape")
    await dialog.wait_for(state="detached")
    assert await page.evaluate("document.activeElement.matches('[data-fieldreport]')")
    # The host page's CSS cannot reach into the widget (shadow root).
    await page.add_style_tag(content="button { background: rgb(255, 0, 255) !important; }")
    bg = await launcher.evaluate("b => getComputedStyle(b).backgroundColor")
    assert bg == "rgb(37, 99, 235)"
    box = await launcher.bounding_box()
    assert box and box["x"] < 40  # bottom-left


async def test_send_failure_keeps_the_text_and_retry_succeeds(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key))
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    await page.get_by_role("button", name="Report a bug").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Describe the problem").fill("Checkout is broken")
    await dialog.get_by_label("Your email").fill("not-an-email")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("This email address does not look right").wait_for()
    await dialog.get_by_label("Your email").fill("")

    # The server refuses (the project no longer allows this origin): a clear error, text kept.
    await _disallow(server, project, page_server.url)
    await dialog.get_by_role("button", name="Send report").click()
    alert = dialog.get_by_role("alert")
    await alert.wait_for()
    assert "could not be sent" in await alert.text_content()
    await snap(page, "error")
    assert await dialog.get_by_label("Describe the problem").input_value() == "Checkout is broken"
    assert await _reports(client, project) == []

    await _allow(server, project, page_server.url)
    await dialog.get_by_role("button", name="Try again").click()
    await dialog.get_by_text("Thank you!").wait_for()
    [report] = await _reports(client, project)
    assert report["sendercomment"] == "Checkout is broken"


async def test_server_error_message_is_shown(
    server: RunningServer,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    """A refusal the browser may read (the origin is allowed) shows the server's own reason."""
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, "frp_wrong-key"))
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    await page.get_by_role("button", name="Report a bug").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Describe the problem").fill("Hello")
    await dialog.get_by_role("button", name="Send report").click()
    alert = dialog.get_by_role("alert")
    await alert.wait_for()
    text = await alert.text_content()
    assert "could not be sent" in text and "key" in text.lower(), text


async def test_visible_part_of_a_scrolled_page(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(
        script_tag(server.url, project.public_key, button="false"),
        extra_body='<div class="spacer"></div><div id="far">Far down the page</div>'
        '<div id="pane" style="height: 200px; overflow: auto">'
        '<div style="height: 600px"></div><div id="end" style="height: 200px;'
        ' background: rgb(200, 0, 120)"></div></div><div class="spacer"></div>',
    )
    page = await browser.new_page(viewport={"width": 900, "height": 600})
    await page.goto(page_server.url + "/")
    await page.wait_for_function("() => typeof window.fieldreport?.open === 'function'")
    assert (
        await page.locator("[data-fieldreport]").evaluate(
            "h => h.shadowRoot.querySelector('.launcher')"
        )
        is None
    )  # data-button="false": the team opens it from its own button
    await page.evaluate("document.getElementById('far').scrollIntoView()")
    # An inner scrolled pane too (app layouts): its scrolled content is what is captured.
    await page.evaluate("document.getElementById('pane').scrollTop = 600")
    pane = await page.evaluate(
        "(() => { const r = document.getElementById('pane').getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    await page.evaluate("window.fieldreport.open()")
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Describe the problem").fill("Blue block")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()
    [report] = await _reports(client, project)
    image = await _screenshot(client, project, report)
    assert image.size == (900, 600)
    # The blue block fills the top of the viewport; the page's header is not in the picture.
    assert image.getpixel((450, 100)) == (0, 90, 200)
    assert _count(image, lambda p: p == (17, 24, 39)) == 0
    assert 0 < pane[1] < 600
    assert image.getpixel((int(pane[0]), int(pane[1]))) == (200, 0, 120)


async def test_works_under_a_strict_content_security_policy(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    """No inline styles or eval: a page that allows only our script, our API and data:/blob:
    images (for the screenshot) gets a working widget. The one CSP violation left is the
    screenshot library's attempt to embed web fonts (then it captures with fallback fonts)."""
    await _allow(server, project, page_server.url)
    html = shop_page(script_tag(server.url, project.public_key)).replace(
        "<style>", '<link rel="stylesheet" href="/shop.css"><style media="not all">'
    )
    csp = (
        f"default-src 'self'; script-src {server.url}; connect-src {server.url}; "
        "img-src 'self' data: blob:; style-src 'self'; font-src 'self' data:"
    )
    page_server.handlers["/"] = lambda request: web.Response(
        text=html, content_type="text/html", headers={"Content-Security-Policy": csp}
    )
    page_server.handlers["/shop.css"] = lambda request: web.Response(
        text=STYLE, content_type="text/css"
    )
    page = await browser.new_page(viewport=VIEWPORT)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.goto(page_server.url + "/")
    await page.get_by_role("button", name="Report a bug").wait_for()
    violations.clear()  # the test page's own inline style attributes
    await page.get_by_role("button", name="Report a bug").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="+ Add a note").click()
    await dialog.get_by_role("textbox", name="Note 1").fill("Under CSP")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()
    assert len(violations) <= 1, violations
    [report] = await _reports(client, project)
    assert report["notelist"] == ["Under CSP"]
    image = await _screenshot(client, project, report)
    assert image.getpixel((10, 10)) == (17, 24, 39)  # the page, styled by its own stylesheet


async def test_phone_sized_screen(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(script_tag(server.url, project.public_key, color="#0f766e"))
    page = await browser.new_page(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True
    )
    await page.goto(page_server.url + "/")
    await page.get_by_role("button", name="Report a bug").tap()
    dialog = page.get_by_role("dialog")
    overlay = dialog.get_by_role("img", name="Screenshot annotations")
    box = await overlay.bounding_box()
    assert box and box["width"] <= 390
    await _drag(page, box, (0.1, 0.2), (0.7, 0.4))
    await dialog.get_by_label("Describe the problem").fill("Too small to read")
    await snap(page, "phone")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()
    [report] = await _reports(client, project)
    image = await _screenshot(client, project, report)
    assert image.size == (780, 1688)  # the device's pixels


async def test_pinned_widget_url(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    """The immutable /widget/widget.<hash>.js finds the API at the server's root too."""
    await _allow(server, project, page_server.url)
    pinned = f"{server.url}/widget/{load_bundle().versioned_widget_name}"
    page_server.pages["/"] = shop_page(
        f'<script src="{pinned}" data-key="{project.public_key}" async></script>'
    )
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    await page.get_by_role("button", name="Report a bug").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Describe the problem").fill("Pinned build")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()
    [report] = await _reports(client, project)
    assert report["sendercomment"] == "Pinned build"


async def test_configured_from_javascript(
    server: RunningServer,
    client: httpx.AsyncClient,
    project: NewProject,
    page_server: PageServer,
    browser: Any,
) -> None:
    """No data-key: the app calls fieldreport.init() and listens for fieldreport:sent."""
    await _allow(server, project, page_server.url)
    page_server.pages["/"] = shop_page(
        "<script>window.sent = null; addEventListener('fieldreport:sent', e => sent = e.detail);"
        "addEventListener('fieldreport:ready', () => fieldreport.init({"
        f"key: '{project.public_key}', label: 'Give feedback', position: 'top-left',"
        " email: false}));</script>"
        f'<script src="{server.url}/widget.js" async></script>'
    )
    page = await browser.new_page(viewport=VIEWPORT)
    await page.goto(page_server.url + "/")
    launcher = page.get_by_role("button", name="Give feedback")
    box = await launcher.bounding_box()
    assert box and box["x"] < 40 and box["y"] < 40  # top-left
    await launcher.click()
    dialog = page.get_by_role("dialog", name="Give feedback")
    assert await dialog.get_by_label("Your email").count() == 0  # email: false
    await dialog.get_by_label("Describe the problem").fill("From init()")
    await dialog.get_by_role("button", name="Send report").click()
    await dialog.get_by_text("Thank you!").wait_for()
    sent = await page.evaluate("window.sent")
    [report] = await _reports(client, project)
    assert sent["reportid"] == report["reportid"] and sent["ticketnr"] == 1
    assert report["senderemail"] in (None, "")
    # Closing gives the page back; open() again works (a new screenshot each time).
    await dialog.get_by_role("button", name="Close", exact=True).click()
    await dialog.wait_for(state="detached")
    await page.evaluate("fieldreport.open()")
    await page.get_by_role("dialog").wait_for()
