"""The write entry points. Each runs one use case in one unit of work; POST only."""

from __future__ import annotations

import strawberry

from resolvers import account_mutations, order_mutations, product_mutations, profile_mutations


@strawberry.type
class Mutation:
    register_user: account_mutations.RegisterUserPayload = strawberry.mutation(
        resolver=account_mutations.register_user,
        description="Sign up (anonymous); rate limited per client address.",
    )
    update_profile: profile_mutations.UpdateProfilePayload = strawberry.mutation(
        resolver=profile_mutations.update_profile, description="The signed-in user's profile."
    )
    create_order: order_mutations.CreateOrderPayload = strawberry.mutation(
        resolver=order_mutations.create_order,
        description="Place an order for the signed-in user (orders:write).",
    )
    cancel_order: order_mutations.CancelOrderPayload = strawberry.mutation(
        resolver=order_mutations.cancel_order,
        description="Cancel a placed order and restock its items (its owner, or an admin).",
    )
    fulfill_order: order_mutations.FulfillOrderPayload = strawberry.mutation(
        resolver=order_mutations.fulfill_order, description="Mark a placed order fulfilled."
    )
    create_product: product_mutations.ProductPayload = strawberry.mutation(
        resolver=product_mutations.create_product, description="Admin."
    )
    update_product: product_mutations.ProductPayload = strawberry.mutation(
        resolver=product_mutations.update_product, description="Admin; omitted fields unchanged."
    )
    restock_product: product_mutations.ProductPayload = strawberry.mutation(
        resolver=product_mutations.restock_product, description="Admin; adds to the stock."
    )
    create_api_key: account_mutations.CreateApiKeyPayload = strawberry.mutation(
        resolver=account_mutations.create_api_key,
        description="A key for the signed-in user's scripts; the secret is in this payload only.",
    )
    revoke_api_key: account_mutations.RevokeApiKeyPayload = strawberry.mutation(
        resolver=account_mutations.revoke_api_key,
        description="Revoke one of the signed-in user's keys; refused from the next request on.",
    )
