"""A shop API source that runs offline: deterministic customers, products and orders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dlt

CITIES = ["Berlin", "Lisbon", "Oslo", "Porto", "Vienna"]


@dlt.source
def shop(
    n_customers: int = dlt.config.value,
    n_orders: int = dlt.config.value,
    api_key: str = dlt.secrets.value,
    page_size: int = 100,
) -> list:
    """Customers, products and orders of the shop. `api_key` authenticates (a secret)."""
    if not api_key:
        raise ValueError("shop source: api_key is empty")

    @dlt.resource(primary_key="customer_id", write_disposition="merge")
    def customers() -> Iterator[list[dict]]:
        """Registered customers."""
        for start in range(0, n_customers, page_size):
            yield [
                {"customer_id": i, "name": f"customer {i}", "city": CITIES[i % len(CITIES)]}
                for i in range(start, min(start + page_size, n_customers))
            ]

    @dlt.resource(primary_key="product_id", write_disposition="replace")
    def products() -> Iterator[list[dict]]:
        """The product list."""
        yield [
            {"product_id": p, "title": f"product {p}", "price": round(5 + p * 1.25, 2)}
            for p in range(20)
        ]

    @dlt.resource(primary_key="order_id", write_disposition="merge")
    def orders() -> Iterator[list[dict]]:
        """Orders with their amounts."""
        day0 = dt.date(2026, 1, 1)
        for start in range(0, n_orders, page_size):
            yield [
                {
                    "order_id": o,
                    "customer_id": o % max(n_customers, 1),
                    "product_id": o % 20,
                    "quantity": 1 + o % 3,
                    "amount": round((5 + (o % 20) * 1.25) * (1 + o % 3), 2),
                    "ordered_on": day0 + dt.timedelta(days=o % 90),
                }
                for o in range(start, min(start + page_size, n_orders))
            ]

    return [customers, products, orders]
