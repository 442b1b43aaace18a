from __future__ import annotations

from collections import Counter

from app.seed import DEMO, SeedSize, generate


def test_the_demo_data_set_is_deterministic_and_sized() -> None:
    first, second = generate(DEMO), generate(DEMO)
    assert first == second
    assert [len(first[t]) for t in ("products", "users", "orders")] == [50, 200, 2000]
    assert len(first["profiles"]) == 200


def test_orders_are_consistent() -> None:
    data = generate(SeedSize(products=20, users=10, orders=300))
    prices = {p["id"]: (p["price_amount"], p["currency"]) for p in data["products"]}
    lines = Counter(item["order_id"] for item in data["order_items"])
    totals: Counter[object] = Counter()
    for item in data["order_items"]:
        price, _ = prices[item["product_id"]]
        assert item["unit_price_amount"] == price
        totals[item["order_id"]] += item["quantity"] * price
    for order in data["orders"]:
        assert lines[order["id"]] >= 1
        assert order["total_amount"] == totals[order["id"]]
        currencies = {
            prices[i["product_id"]][1] for i in data["order_items"] if i["order_id"] == order["id"]
        }
        assert currencies == {order["currency"]}, "an order is in one currency"
        assert order["updated_at"] >= order["created_at"]


def test_emails_are_unique_and_lower_case() -> None:
    emails = [u["email"] for u in generate(DEMO)["users"]]
    assert len(set(emails)) == len(emails)
    assert all(e == e.lower() for e in emails)
