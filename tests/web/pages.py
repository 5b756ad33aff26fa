"""HTML of the test pages: a small, realistic web shop with the widget's script tag."""

from __future__ import annotations

from html import escape

STYLE = """
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 Georgia, serif; color: #1f2937; background: #fafaf9; }
  header { display: flex; align-items: center; justify-content: space-between; padding: 18px 40px;
           background: #111827; color: #f9fafb; }
  header h1 { margin: 0; font-size: 22px; letter-spacing: .04em; }
  nav a { color: #d1d5db; margin-left: 22px; text-decoration: none; }
  main { max-width: 1040px; margin: 32px auto; padding: 0 24px; }
  .grid { display: grid; grid-template-columns: repeat(3, 1fr); gap: 22px; }
  .card { background: #fff; border: 1px solid #e7e5e4; border-radius: 10px; padding: 18px; }
  .card .img { height: 120px; border-radius: 6px; margin-bottom: 12px; }
  .price { font-weight: bold; font-size: 18px; color: #b91c1c; }
  button.buy { margin-top: 10px; padding: 8px 14px; border: 0; border-radius: 6px;
               background: #059669; color: white; font: inherit; }
  #checkout { margin-top: 36px; padding: 20px; background: #fff7ed; border: 1px solid #fed7aa;
              border-radius: 10px; }
  .spacer { height: 1600px; }
  #far { height: 300px; background: rgb(0, 90, 200); color: white; font-size: 32px; padding: 40px; }
"""

CARDS = [
    ("Walnut desk lamp", "€ 89.00", "#d6a56f"),
    ("Linen armchair", "€ 349.00", "#a3b18a"),
    ("Ceramic vase", "€ -12.50", "#8ecae6"),
]


def shop_page(script_tag: str, extra_body: str = "") -> str:
    cards = "".join(
        f'<div class="card"><div class="img" style="background:{color}"></div>'
        f"<h3>{escape(name)}</h3><div class=price>{escape(price)}</div>"
        f'<button class="buy">Add to cart</button></div>'
        for name, price, color in CARDS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Home — Shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head>
<body>
<header><h1>ACME HOME</h1>
  <nav><a href="#">Living</a><a href="#">Lighting</a><a href="#">Cart (2)</a></nav></header>
<main>
  <h2>Spring collection</h2>
  <div class="grid">{cards}</div>
  <section id="checkout"><h3>Your cart</h3>
    <p>Total: <b>€ 76.50</b> — the vase shows a negative price.</p>
    <label>Coupon <input id="coupon" name="coupon" value="SPRING-2026"></label>
    <label>Password <input id="password" type="password" value="hunter2"></label>
  </section>
  {extra_body}
</main>
{script_tag}
</body></html>"""


def script_tag(server_url: str, key: str, **data: str) -> str:
    attrs = "".join(f' data-{name}="{escape(value)}"' for name, value in data.items())
    return f'<script src="{server_url}/widget.js" data-key="{escape(key)}"{attrs} async></script>'
