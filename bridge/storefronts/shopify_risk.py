"""Shopify's fraud risk of an order, for the `holds.risk` policy.

Why GraphQL: the REST order webhook carries no risk data (the REST Order Risk resource was a
separate call, deprecated since 2024-04). Admin GraphQL `Order.risk` (an `OrderRiskSummary`)
gives `recommendation` (CANCEL, INVESTIGATE, ACCEPT, NONE) and the `assessments` behind it, each
with a `riskLevel`. The bridge reads it once per planning of an order, only for channels whose
rules use risk (`Channel.uses_risk`), on the channel's shared GraphQL client and cost budget.
"""

from __future__ import annotations

from ..channels import Channel
from ..orders import OrderRisk
from .shopify_graphql import GraphQLOperation, ShopifyGraphQL, gid, items, obj, order_not_found

ORDER_RISK = GraphQLOperation(
    """
query BridgeOrderRisk($id: ID!) {
  order(id: $id) {
    id
    risk {
      recommendation
      assessments {
        riskLevel
      }
    }
  }
}
""".strip(),
    estimated_cost=3,
)


class ShopifyRisk:
    """`RiskSource` for a Shopify channel (shares the channel's GraphQL client)."""

    def __init__(self, channel: Channel, graphql: ShopifyGraphQL) -> None:
        self.channel = channel
        self.graphql = graphql

    def order_risk(self, order_external_id: str) -> OrderRisk:
        """Raises `PushError` (retryable or not) when Shopify cannot answer."""
        data = self.graphql.call(ORDER_RISK, {"id": gid("Order", order_external_id)})
        order = data.get("order")
        if order is None:
            raise order_not_found(order_external_id)
        risk = obj(obj(order).get("risk"))
        recommendation = risk.get("recommendation")
        levels = tuple(
            str(level)
            for level in (obj(a).get("riskLevel") for a in items(risk.get("assessments")))
            if isinstance(level, str)
        )
        return OrderRisk(recommendation if isinstance(recommendation, str) else "NONE", levels)
