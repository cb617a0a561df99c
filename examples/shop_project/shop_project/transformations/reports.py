"""Reports built from the raw shop data."""

from __future__ import annotations

from typing import Any


def customer_totals(shop_raw: Any) -> dict[str, Any]:
    """Revenue and order count per customer, read in SQL, written as one table."""
    frame = shop_raw.query(
        "SELECT c.customer_id, c.name, c.city, COUNT(o.order_id) AS orders, "
        "SUM(o.amount) AS revenue FROM customers c JOIN orders o "
        "ON o.customer_id = c.customer_id GROUP BY c.customer_id, c.name, c.city "
        "ORDER BY c.customer_id"
    ).df()
    return {"customer_totals": frame}
