"""Real clicks and typing in the dashboard's Bokeh pages over the DevTools protocol."""
from __future__ import annotations

import asyncio
import json

from tests.dashboard.browser import Page

VIEW = """
(() => {
  const doc = Bokeh.documents[0];
  const model = doc && doc.get_model_by_name(%s);
  if (!model) return null;
  for (const root of Bokeh.index.roots) {
    const view = root.owner.find_one(model);
    if (view) { window.__lw_view = view; return true; }
  }
  return null;
})()
"""


async def bokeh_ready(page: Page, name: str, timeout: float = 60.0) -> None:
    """Wait until the page's document has a model called ``name`` with a view."""
    await page.wait_for("typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0", timeout)
    await page.wait_for(VIEW % json.dumps(name), timeout)


async def center_of(page: Page, name: str, part: str = "el", css: str | None = None) -> tuple[float, float]:
    """The viewport centre of a model's element (``part``: el, input_el, button_el…; ``css``: a selector
    inside the view's shadow root)."""
    await page.wait_for(VIEW % json.dumps(name))
    target = (f"(window.__lw_view.shadow_el || window.__lw_view.el).querySelector({json.dumps(css)})"
              if css else f"window.__lw_view.{part}")
    box = await page.wait_for(f"""(() => {{ const el = {target}; if (!el) return null;
        el.scrollIntoView({{block: 'center'}}); const b = el.getBoundingClientRect();
        return b.width > 0 ? [b.x + b.width / 2, b.y + b.height / 2] : null; }})()""")
    return box[0], box[1]


async def click_at(page: Page, x: float, y: float) -> None:
    """A real left click (press and release) at viewport coordinates."""
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        await page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


async def click(page: Page, name: str, part: str = "el", css: str | None = None) -> None:
    """Click a model's element."""
    await click_at(page, *await center_of(page, name, part, css))
    await asyncio.sleep(0.2)


async def type_into(page: Page, name: str, text: str) -> None:
    """Click into a text input and type ``text`` (replacing what it held)."""
    await click(page, name, "input_el")
    await page.call("Input.dispatchKeyEvent", type="rawKeyDown", key="a", code="KeyA", modifiers=2,
                    windowsVirtualKeyCode=65)
    await page.call("Input.dispatchKeyEvent", type="keyUp", key="a", code="KeyA", modifiers=2,
                    windowsVirtualKeyCode=65)
    await page.call("Input.insertText", text=text)


async def source_data(page: Page, name: str) -> dict:
    """The columns of the ColumnDataSource ``name``."""
    return await page.evaluate(f"""(() => {{
      const src = Bokeh.documents[0].get_model_by_name({json.dumps(name)});
      const data = src.data instanceof Map ? Object.fromEntries(src.data) : src.data;
      const out = {{}};
      for (const [k, v] of Object.entries(data)) out[k] = Array.from(v);
      return out; }})()""")


async def model_text(page: Page, name: str) -> str:
    """The ``text`` of a Div."""
    return await page.evaluate(f"(Bokeh.documents[0].get_model_by_name({json.dumps(name)}) || {{}}).text || ''")


async def has_model(page: Page, name: str) -> bool:
    """Whether the page's document has a model called ``name``."""
    return await page.evaluate(f"Bokeh.documents[0].get_model_by_name({json.dumps(name)}) !== null")


async def navigate(page: Page, url: str) -> None:
    """Open ``url`` in the page and wait for its Bokeh document."""
    await page.evaluate("window.__lw_previous = true")
    await page.call("Page.navigate", url=url)
    try:
        await page.wait_for("!window.__lw_previous && typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0")
    except TimeoutError:
        where = await page.evaluate("location.href + ' ' + document.body.innerText.slice(0, 500)")
        raise AssertionError(f"no Bokeh document at {where}") from None
