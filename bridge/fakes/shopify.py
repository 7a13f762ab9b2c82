"""A fake Shopify Admin GraphQL API: the part of it fba-bridge uses, in both ways it connects.

It executes real GraphQL (graphql-core, a runtime dependency of this module) against
`SCHEMA_SDL`, a subset of Shopify's 2026-07 Admin schema with identical type, field and argument
names (a test checks it against the full schema), so any document the bridge sends is validated
and answered in exactly the selection's shape, aliases included. What it holds and does:

- Locations: a primary "Shop location", more with `add_location`, and one per fulfillment
  service. Fulfillment services: another app's (`add_fulfillment_service`, e.g. print on demand)
  or the caller's own (`fulfillmentServiceCreate`, names unique; `fulfillmentServiceUpdate`).
- Orders seeded with `add_order` (or by `order_source` on first sight): one OPEN fulfillment
  order holding every line (or several, with `fulfillment_order_groups`), each at a location
  (`locations`). `fulfillmentCreate` takes
  quantities off the fulfillment order line items, moves a fulfillment order to IN_PROGRESS, or
  CLOSED when nothing remains, records the fulfillment, and refuses with `userErrors`:
  over-fulfilment, unknown ids, fulfillment orders not OPEN/IN_PROGRESS, another app's
  fulfillment orders, and the caller's own service's ones whose request it has not accepted.
  `orderUpdate` stores the note. `merchant_fulfill` is the merchant fulfilling by hand.
- Fulfillment requests, as Shopify's rules have them: `request_fulfillment` (merchant, OPEN and
  UNSUBMITTED or REJECTED -> SUBMITTED) and `request_cancellation` (ACCEPTED -> CANCELLATION_REQUESTED)
  each post `{"kind": ...}` to the service's `<callbackUrl>/fulfillment_order_notification`, signed
  with `app_secret` (`X-Shopify-Hmac-Sha256`), through `callback_transport` (default: real HTTP);
  `callbacks` records them. Accepting or rejecting a request works only while it is SUBMITTED
  (accept: IN_PROGRESS), a cancellation only while CANCELLATION_REQUESTED (accepting it closes
  the fulfillment order, as `fulfillmentOrderCancel`'s description says Shopify does).
  `assignedFulfillmentOrders` lists the caller's services' fulfillment orders by assignment status.
- Inventory (`fake.inventory`, its own block at the end of the module): items per SKU with
  `available` units per location, `inventoryItems(query: "sku:...")` and `inventorySetQuantities`
  with `changeFromQuantity` and the required `@idempotent` key; `sell()` is a sale in the shop.
- The order listing reconciliation reads: `put_order(document)` creates or changes an order from
  its REST document (the webhook body's shape), stamps `updated_at` with the fake's clock and
  returns the body the matching webhook would carry; `orders(query: "updated_at:>='...'",
  sortKey: UPDATED_AT, first, after)` serves those orders (content, lines, addresses, customer)
  with keyset cursors. Orders seeded with `add_order` alone are not listed.
- Authentication by `X-Shopify-Access-Token` (401 with Shopify's body otherwise; `revoke()`).
- What `fba-bridge check channel` reads: `shop`, `currentAppInstallation.accessScopes` (set
  `access_scopes`) and the app's `webhookSubscriptions` (`add_webhook_subscription`).
- Shopify's calculated query cost (objects 1, connections 2 + first x node cost, mutations 10),
  a leaky bucket on an injectable clock (`maximum_available` 1000, `restore_rate` 50/s by
  default), `extensions.cost` on every executed or throttled answer, `THROTTLED` errors when the
  bucket holds less than the requested cost and `MAX_COST_EXCEEDED` above 1000.
- Faults, matched by operation name or root field name (`"fulfillmentCreate"`):
  `fail_next(name, status, count, retry_after)` answers an HTTP error without acting;
  `accept_then_drop_next(name)` acts, then drops the connection (see
  `bridge.amazon.simulator.dropping`).
- Evidence: `requests` (operation name, root fields, variables, outcome; never the token),
  `calls(name, outcome=None)`, `fulfillments(order_id)`, `fulfillment_orders(order_id)`,
  `note(order_id)`, `fulfillment_services()`.

Control endpoints for a fake running in another process (no auth; bind it to loopback):
`POST /_fake/locations` `{"name"}`, `POST /_fake/orders` `{"order_id", "lines": [{"line_id",
"sku", "quantity"}], "locations"?}`, `GET /_fake/orders/<order_id>` and
`POST /_fake/orders/<order_id>/fulfillment_orders/<index>/request_fulfillment` (or
`request_cancellation`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import httpx
from flask import Flask, Response, request
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from graphql.utilities import get_operation_ast

from bridge.amazon.simulator.dropping import ConnectionDropper, mark_drop
from bridge.clock import Clock, SystemClock

TOKEN_HEADER = "X-Shopify-Access-Token"  # noqa: S105 (a header name)
MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MUTATION_COST = 10
UNAUTHORIZED_BODY = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
PRIMARY_LOCATION = "Shop location"
# Request statuses under which the fulfillment service may create fulfillments.
ACCEPTED_REQUEST_STATUSES = ("ACCEPTED", "CANCELLATION_REQUESTED", "CANCELLATION_REJECTED")
ASSIGNMENT_FILTERS = {
    "FULFILLMENT_REQUESTED": "SUBMITTED",
    "FULFILLMENT_ACCEPTED": "ACCEPTED",
    "CANCELLATION_REQUESTED": "CANCELLATION_REQUESTED",
    "FULFILLMENT_UNSUBMITTED": "UNSUBMITTED",
}

SCHEMA_SDL = """
schema {
  query: QueryRoot
  mutation: Mutation
}

scalar DateTime
scalar URL

type QueryRoot {
  order(id: ID!): Order
  fulfillmentOrder(id: ID!): FulfillmentOrder
  shop: Shop!
  currentAppInstallation: AppInstallation!
  webhookSubscriptions(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    topics: [WebhookSubscriptionTopic!]
  ): WebhookSubscriptionConnection!
  assignedFulfillmentOrders(
    assignmentStatus: FulfillmentOrderAssignmentStatus
    locationIds: [ID!]
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentOrderConnection!
  locations(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    includeInactive: Boolean = false
  ): LocationConnection!
  location(id: ID): Location
  orders(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: OrderSortKeys = PROCESSED_AT
    query: String
  ): OrderConnection!
}

type Mutation {
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
  orderUpdate(input: OrderInput!): OrderUpdatePayload
  fulfillmentServiceCreate(
    name: String!
    callbackUrl: URL
    trackingSupport: Boolean = false
    inventoryManagement: Boolean = false
    requiresShippingMethod: Boolean = true
  ): FulfillmentServiceCreatePayload
  fulfillmentServiceUpdate(
    id: ID!
    name: String
    callbackUrl: URL
    trackingSupport: Boolean
    inventoryManagement: Boolean
    requiresShippingMethod: Boolean
  ): FulfillmentServiceUpdatePayload
  fulfillmentOrderAcceptFulfillmentRequest(
    id: ID!
    message: String
    estimatedShippedAt: DateTime
  ): FulfillmentOrderAcceptFulfillmentRequestPayload
  fulfillmentOrderRejectFulfillmentRequest(
    id: ID!
    reason: FulfillmentOrderRejectionReason
    message: String
    lineItems: [IncomingRequestLineItemInput!]
  ): FulfillmentOrderRejectFulfillmentRequestPayload
  fulfillmentOrderAcceptCancellationRequest(
    id: ID!
    message: String
  ): FulfillmentOrderAcceptCancellationRequestPayload
  fulfillmentOrderRejectCancellationRequest(
    id: ID!
    message: String
  ): FulfillmentOrderRejectCancellationRequestPayload
  fulfillmentOrderMove(
    id: ID!
    newLocationId: ID!
    fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
  ): FulfillmentOrderMovePayload
}

type FulfillmentOrderMovePayload {
  movedFulfillmentOrder: FulfillmentOrder
  originalFulfillmentOrder: FulfillmentOrder
  userErrors: [FulfillmentOrderMoveFulfillmentOrderMoveUserError!]!
}

type FulfillmentOrderMoveFulfillmentOrderMoveUserError {
  code: FulfillmentOrderMoveFulfillmentOrderMoveUserErrorCode
  field: [String!]
  message: String!
}

enum FulfillmentOrderMoveFulfillmentOrderMoveUserErrorCode {
  CANNOT_MOVE_FULFILLMENT_ORDER_WITH_REPORTED_PROGRESS
}

type Shop {
  id: ID!
  name: String!
  myshopifyDomain: String!
  fulfillmentServices: [FulfillmentService!]!
}

type Location {
  id: ID!
  name: String!
  isActive: Boolean!
  isFulfillmentService: Boolean!
  fulfillmentService: FulfillmentService
}

type LocationConnection {
  edges: [LocationEdge!]!
  nodes: [Location!]!
  pageInfo: PageInfo!
}

type LocationEdge {
  cursor: String!
  node: Location!
}

enum FulfillmentServiceType {
  GIFT_CARD
  MANUAL
  THIRD_PARTY
}

type FulfillmentService {
  id: ID!
  serviceName: String!
  handle: String!
  callbackUrl: URL
  location: Location
  trackingSupport: Boolean!
  inventoryManagement: Boolean!
  requiresShippingMethod: Boolean!
  type: FulfillmentServiceType!
}

type FulfillmentServiceCreatePayload {
  fulfillmentService: FulfillmentService
  userErrors: [UserError!]!
}

type FulfillmentServiceUpdatePayload {
  fulfillmentService: FulfillmentService
  userErrors: [UserError!]!
}

type Order {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  number: Int!
  note: String
  email: String
  phone: String
  test: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  currencyCode: CurrencyCode!
  displayFinancialStatus: OrderDisplayFinancialStatus
  customAttributes: [Attribute!]!
  tags: [String!]!
  customer: Customer
  shippingAddress: MailingAddress
  billingAddress: MailingAddress
  lineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): LineItemConnection!
  shippingLines(
    includeRemovals: Boolean = false
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): ShippingLineConnection!
  fulfillmentOrders(
    displayable: Boolean = false
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
  ): FulfillmentOrderConnection!
  fulfillments(first: Int, query: String): [Fulfillment!]!
  risk: OrderRiskSummary!
}

type OrderRiskSummary {
  assessments: [OrderRiskAssessment!]!
  recommendation: OrderRiskRecommendationResult!
}

type OrderRiskAssessment {
  riskLevel: RiskAssessmentResult!
}

enum OrderRiskRecommendationResult {
  ACCEPT
  CANCEL
  INVESTIGATE
  NONE
}

enum RiskAssessmentResult {
  HIGH
  LOW
  MEDIUM
  NONE
  PENDING
}

type PageInfo {
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
}

enum FulfillmentOrderStatus {
  OPEN
  IN_PROGRESS
  CANCELLED
  INCOMPLETE
  CLOSED
  SCHEDULED
  ON_HOLD
}

enum FulfillmentOrderRequestStatus {
  UNSUBMITTED
  SUBMITTED
  ACCEPTED
  REJECTED
  CANCELLATION_REQUESTED
  CANCELLATION_ACCEPTED
  CANCELLATION_REJECTED
  CLOSED
}

enum FulfillmentOrderAssignmentStatus {
  CANCELLATION_REQUESTED
  FULFILLMENT_REQUESTED
  FULFILLMENT_ACCEPTED
  FULFILLMENT_UNSUBMITTED
}

enum FulfillmentOrderRejectionReason {
  INCORRECT_ADDRESS
  INVENTORY_OUT_OF_STOCK
  INELIGIBLE_PRODUCT
  UNDELIVERABLE_DESTINATION
  INTERNATIONAL_SHIPPING_UNAVAILABLE
  INCORRECT_PRODUCT_INFO
  MISSING_CUSTOMS_INFO
  INVALID_SKU
  PAYMENT_DECLINED
  PACKAGE_PREFERENCE_NOT_SET
  INVALID_CONTACT_INFORMATION
  ORDER_TOO_LARGE
  MERCHANT_BLOCKED_OR_SUSPENDED
  OTHER
}

enum FulfillmentOrderMerchantRequestKind {
  FULFILLMENT_REQUEST
  CANCELLATION_REQUEST
}

enum FulfillmentOrderAction {
  CREATE_FULFILLMENT
  REQUEST_FULFILLMENT
  CANCEL_FULFILLMENT_ORDER
  MOVE
  REQUEST_CANCELLATION
  MARK_AS_OPEN
  RELEASE_HOLD
  HOLD
  EXTERNAL
  SPLIT
  MERGE
  REPORT_PROGRESS
}

enum CountryCode {
  US
  CA
  MX
  GB
  DE
  FR
  IT
  ES
  NL
  JP
  AU
}

enum DeliveryMethodType {
  SHIPPING
  PICK_UP
  NONE
  RETAIL
  LOCAL
  PICKUP_POINT
}

type FulfillmentOrderConnection {
  edges: [FulfillmentOrderEdge!]!
  nodes: [FulfillmentOrder!]!
  pageInfo: PageInfo!
}

type FulfillmentOrderEdge {
  cursor: String!
  node: FulfillmentOrder!
}

type FulfillmentOrder {
  id: ID!
  status: FulfillmentOrderStatus!
  requestStatus: FulfillmentOrderRequestStatus!
  order: Order!
  orderId: ID!
  orderName: String!
  orderProcessedAt: DateTime!
  assignedLocation: FulfillmentOrderAssignedLocation!
  destination: FulfillmentOrderDestination
  deliveryMethod: DeliveryMethod
  supportedActions: [FulfillmentOrderSupportedAction!]!
  merchantRequests(
    kind: FulfillmentOrderMerchantRequestKind
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentOrderMerchantRequestConnection!
  lineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentOrderLineItemConnection!
}

type FulfillmentOrderAssignedLocation {
  name: String!
  location: Location
}

type FulfillmentOrderDestination {
  id: ID!
  firstName: String
  lastName: String
  company: String
  address1: String
  address2: String
  city: String
  province: String
  zip: String
  countryCode: CountryCode
  phone: String
  email: String
}

type DeliveryMethod {
  id: ID!
  methodType: DeliveryMethodType!
  presentedName: String
}

type FulfillmentOrderSupportedAction {
  action: FulfillmentOrderAction!
}

type FulfillmentOrderMerchantRequestConnection {
  edges: [FulfillmentOrderMerchantRequestEdge!]!
  nodes: [FulfillmentOrderMerchantRequest!]!
  pageInfo: PageInfo!
}

type FulfillmentOrderMerchantRequestEdge {
  cursor: String!
  node: FulfillmentOrderMerchantRequest!
}

type FulfillmentOrderMerchantRequest {
  id: ID!
  kind: FulfillmentOrderMerchantRequestKind!
  message: String
  sentAt: DateTime!
  fulfillmentOrder: FulfillmentOrder!
}

type FulfillmentOrderLineItemConnection {
  edges: [FulfillmentOrderLineItemEdge!]!
  nodes: [FulfillmentOrderLineItem!]!
  pageInfo: PageInfo!
}

type FulfillmentOrderLineItemEdge {
  cursor: String!
  node: FulfillmentOrderLineItem!
}

type FulfillmentOrderLineItem {
  id: ID!
  lineItem: LineItem!
  remainingQuantity: Int!
  totalQuantity: Int!
  requiresShipping: Boolean!
  sku: String
  productTitle: String!
}

type LineItem {
  id: ID!
  name: String!
  title: String!
  quantity: Int!
  currentQuantity: Int!
  unfulfilledQuantity: Int!
  sku: String
  requiresShipping: Boolean!
  isGiftCard: Boolean!
  originalUnitPriceSet: MoneyBag!
  customAttributes: [Attribute!]!
}

scalar UnsignedInt64
scalar Decimal

enum OrderSortKeys {
  CREATED_AT
  ID
  PROCESSED_AT
  UPDATED_AT
}

enum OrderCancelReason {
  CUSTOMER
  DECLINED
  FRAUD
  INVENTORY
  STAFF
  OTHER
}

enum OrderDisplayFinancialStatus {
  PENDING
  AUTHORIZED
  PARTIALLY_PAID
  PARTIALLY_REFUNDED
  VOIDED
  PAID
  REFUNDED
  EXPIRED
}

enum CurrencyCode {
  USD
  CAD
  MXN
  GBP
  EUR
  JPY
  AUD
}

type Attribute {
  key: String!
  value: String
}

type Customer {
  id: ID!
  defaultEmailAddress: CustomerEmailAddress
  defaultPhoneNumber: CustomerPhoneNumber
}

type CustomerEmailAddress {
  emailAddress: String!
}

type CustomerPhoneNumber {
  phoneNumber: String!
}

type MoneyV2 {
  amount: Decimal!
  currencyCode: CurrencyCode!
}

type MoneyBag {
  presentmentMoney: MoneyV2!
  shopMoney: MoneyV2!
}

type MailingAddress {
  name: String
  firstName: String
  lastName: String
  company: String
  address1: String
  address2: String
  city: String
  province: String
  provinceCode: String
  zip: String
  countryCodeV2: CountryCode
  phone: String
}

type ShippingLine {
  id: ID
  title: String!
  code: String
  isRemoved: Boolean!
}

type OrderConnection {
  edges: [OrderEdge!]!
  nodes: [Order!]!
  pageInfo: PageInfo!
}

type OrderEdge {
  cursor: String!
  node: Order!
}

type LineItemConnection {
  edges: [LineItemEdge!]!
  nodes: [LineItem!]!
  pageInfo: PageInfo!
}

type LineItemEdge {
  cursor: String!
  node: LineItem!
}

type ShippingLineConnection {
  edges: [ShippingLineEdge!]!
  nodes: [ShippingLine!]!
  pageInfo: PageInfo!
}

type ShippingLineEdge {
  cursor: String!
  node: ShippingLine!
}

enum FulfillmentStatus {
  SUCCESS
  CANCELLED
  ERROR
  FAILURE
}

type Fulfillment {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  order: Order!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentLineItemConnection!
}

type FulfillmentTrackingInfo {
  company: String
  number: String
  url: URL
}

type FulfillmentLineItemConnection {
  edges: [FulfillmentLineItemEdge!]!
  nodes: [FulfillmentLineItem!]!
  pageInfo: PageInfo!
}

type FulfillmentLineItemEdge {
  cursor: String!
  node: FulfillmentLineItem!
}

type FulfillmentLineItem {
  id: ID!
  lineItem: LineItem!
  quantity: Int
}

input FulfillmentInput {
  trackingInfo: FulfillmentTrackingInput
  notifyCustomer: Boolean = false
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]!
}

input FulfillmentOrderLineItemsInput {
  fulfillmentOrderId: ID!
  fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
}

input FulfillmentOrderLineItemInput {
  id: ID!
  quantity: Int!
}

input FulfillmentTrackingInput {
  number: String
  url: URL
  company: String
  numbers: [String!]
  urls: [URL!]
}

input IncomingRequestLineItemInput {
  fulfillmentOrderLineItemId: ID!
  message: String
}

type UserError {
  field: [String!]
  message: String!
}

type FulfillmentCreatePayload {
  fulfillment: Fulfillment
  userErrors: [UserError!]!
}

type FulfillmentOrderAcceptFulfillmentRequestPayload {
  fulfillmentOrder: FulfillmentOrder
  userErrors: [UserError!]!
}

type FulfillmentOrderRejectFulfillmentRequestPayload {
  fulfillmentOrder: FulfillmentOrder
  userErrors: [UserError!]!
}

type FulfillmentOrderAcceptCancellationRequestPayload {
  fulfillmentOrder: FulfillmentOrder
  userErrors: [UserError!]!
}

type FulfillmentOrderRejectCancellationRequestPayload {
  fulfillmentOrder: FulfillmentOrder
  userErrors: [UserError!]!
}

input OrderInput {
  id: ID!
  note: String
}

type OrderUpdatePayload {
  order: Order
  userErrors: [UserError!]!
}

type AppInstallation {
  id: ID!
  accessScopes: [AccessScope!]!
}

type AccessScope {
  handle: String!
  description: String!
}

enum WebhookSubscriptionTopic {
  APP_UNINSTALLED
  ORDERS_CANCELLED
  ORDERS_CREATE
  ORDERS_PAID
  ORDERS_UPDATED
}

type WebhookSubscriptionConnection {
  edges: [WebhookSubscriptionEdge!]!
  nodes: [WebhookSubscription!]!
  pageInfo: PageInfo!
}

type WebhookSubscriptionEdge {
  cursor: String!
  node: WebhookSubscription!
}

type WebhookSubscription {
  id: ID!
  topic: WebhookSubscriptionTopic!
  uri: String!
}
"""


# --------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class FakeLine:
    line_id: str  # the REST line item id, as the bridge's canonical order knows it
    sku: str | None
    quantity: int
    name: str = "Item"
    requires_shipping: bool = True
    # What an order document (`put_order`) says besides; defaults for orders seeded by `add_order`.
    title: str | None = None
    current_quantity: int | None = None
    unfulfilled_quantity: int | None = None
    gift_card: bool = False
    price: str = "0.00"
    currency: str = "USD"
    properties: tuple[Mapping[str, Any], ...] = ()


@dataclass
class FakeLocation:
    id: int
    name: str
    active: bool = True
    service_id: int | None = None  # the fulfillment service that manages it, if any


@dataclass
class FakeFulfillmentService:
    id: int
    name: str
    handle: str
    callback_url: str | None
    location_id: int
    own: bool  # registered by the calling app (its assigned fulfillment orders are visible to it)
    tracking_support: bool = False
    inventory_management: bool = False
    requires_shipping_method: bool = True


@dataclass(frozen=True)
class FakeMerchantRequest:
    id: int
    kind: str  # FULFILLMENT_REQUEST | CANCELLATION_REQUEST
    message: str | None
    sent_at: datetime


@dataclass
class FakeFulfillmentOrderLineItem:
    id: int
    line: FakeLine
    total: int
    remaining: int


@dataclass
class FakeFulfillmentOrder:
    id: int
    order_id: str
    status: str
    line_items: list[FakeFulfillmentOrderLineItem]
    location_id: int = 0
    request_status: str = "UNSUBMITTED"
    merchant_requests: list[FakeMerchantRequest] = field(default_factory=list)


@dataclass(frozen=True)
class FakeTracking:
    company: str | None
    number: str | None
    url: str | None


@dataclass(frozen=True)
class FakeFulfillmentLine:
    id: int
    line: FakeLine
    quantity: int
    fulfillment_order_id: int


@dataclass(frozen=True)
class FakeFulfillment:
    id: int
    order_id: str
    name: str
    status: str
    created_at: datetime
    tracking: tuple[FakeTracking, ...]
    lines: tuple[FakeFulfillmentLine, ...]
    notify_customer: bool

    @property
    def gid(self) -> str:
        return f"gid://shopify/Fulfillment/{self.id}"

    @property
    def quantities(self) -> dict[str, int]:
        """REST line item id -> units in this fulfillment."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.line.line_id] = out.get(line.line.line_id, 0) + line.quantity
        return out

    @property
    def tracking_numbers(self) -> tuple[str, ...]:
        return tuple(t.number for t in self.tracking if t.number)


#: What the fake app is granted unless a test says otherwise: what the push-back needs.
DEFAULT_ACCESS_SCOPES = ("read_orders", "write_orders", "write_merchant_managed_fulfillment_orders")


@dataclass(frozen=True)
class FakeWebhookSubscription:
    id: int
    topic: str  # WebhookSubscriptionTopic, e.g. ORDERS_CREATE
    uri: str


DEFAULT_DESTINATION: Mapping[str, str | None] = {
    "firstName": "Test",
    "lastName": "Buyer",
    "company": None,
    "address1": "1 Test Street",
    "address2": None,
    "city": "Seattle",
    "province": "WA",
    "zip": "98109",
    "countryCode": "US",
    "phone": None,
    "email": "buyer@example.com",
}


@dataclass
class FakeOrder:
    id: str
    name: str
    note: str | None
    lines: list[FakeLine]
    fulfillment_orders: list[FakeFulfillmentOrder]
    fulfillments: list[FakeFulfillment] = field(default_factory=list)
    destination: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_DESTINATION))
    shipping_method: str = "Standard Shipping"
    processed_at: datetime | None = None
    #: The order as `put_order` stored it (REST shape, what a webhook body carries); None for
    #: orders seeded with `add_order` only, which the `orders` listing leaves out.
    document: dict[str, Any] | None = None
    updated_at: datetime | None = None
    # Order.risk: Shopify's recommendation and each assessment's risk level.
    risk_recommendation: str = "ACCEPT"
    risk_levels: tuple[str, ...] = ("LOW",)


@dataclass(frozen=True)
class RecordedRequest:
    """One call as the fake saw it: never the access token; `outcome` is one of `ok`, `throttled`,
    `invalid` (body, syntax, validation, cost), `unauthorized`, `fault:<status>`, `dropped`."""

    operation_name: str | None
    fields: tuple[str, ...]
    variables: Mapping[str, Any]
    outcome: str
    api_version: str


@dataclass(frozen=True)
class FakeCallback:
    """A notification the fake posted to a fulfillment service, and the HTTP status it got (0: none)."""

    url: str
    kind: str
    status: int


@dataclass(frozen=True)
class FakeAnswer:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class _Fault:
    name: str
    kind: str  # "status" | "accept_then_drop"
    count: int
    status: int = 503
    retry_after: float | None = None


class CostBucket:
    """Shopify's leaky bucket of query-cost points, per app and shop."""

    def __init__(self, clock: Clock, maximum_available: float = 1000.0, restore_rate: float = 50.0) -> None:
        self.clock = clock
        self.maximum_available = float(maximum_available)
        self.restore_rate = float(restore_rate)
        self._available = self.maximum_available
        self._updated = clock.monotonic()

    def available(self) -> float:
        now = self.clock.monotonic()
        self._available = min(
            self.maximum_available, self._available + self.restore_rate * max(0.0, now - self._updated)
        )
        self._updated = now
        return self._available

    def spend(self, points: float) -> None:
        self._available = max(0.0, self.available() - points)

    def set_available(self, points: float) -> None:
        self.available()
        self._available = max(0.0, min(self.maximum_available, float(points)))

    def status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self.available()),
            "restoreRate": self.restore_rate,
        }


# --------------------------------------------------------------------------------------------
# Calculated query cost


_REQUESTED = object()  # walk the document with the page sizes it asks for, not the data returned


class QueryCost:
    """Shopify's calculated query cost for one operation: the *requested* cost (from `first` /
    `last`, before execution) or the *actual* cost (from what the answer holds)."""

    def __init__(
        self, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any]
    ):
        self.operation = operation
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def requested(self) -> int:
        return self._root(_REQUESTED)

    def actual(self, data: Any) -> int:
        return self._root(data)

    def _root(self, value: Any) -> int:
        if self.operation.operation is OperationType.MUTATION:
            return MUTATION_COST * sum(1 for _ in self._fields(self.operation.selection_set))
        return self._selection(self.operation.selection_set, value)

    def _fields(self, selection_set: SelectionSetNode) -> Iterator[FieldNode]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self._fields(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                yield from self._fields(self.fragments[selection.name.value].selection_set)

    def _size(self, node: FieldNode) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode) and isinstance(self.variables.get(value.name.value), int):
                return int(self.variables[value.name.value])
        return None

    @staticmethod
    def _child(value: Any, node: FieldNode) -> Any:
        if value is _REQUESTED:
            return _REQUESTED
        key = node.alias.value if node.alias else node.name.value
        return value.get(key) if isinstance(value, dict) else None

    @staticmethod
    def _items(value: Any, size: int) -> list[Any]:
        if value is _REQUESTED:
            return [_REQUESTED] * size
        return value if isinstance(value, list) else []

    def _selection(self, selection_set: SelectionSetNode | None, value: Any) -> int:
        if selection_set is None or value is None:
            return 0
        total = 0
        for node in self._fields(selection_set):
            if node.selection_set is None or node.name.value.startswith("__"):
                continue  # scalars and enums cost nothing
            size = self._size(node)
            child = self._child(value, node)
            total += (
                1 + self._selection(node.selection_set, child)
                if size is None
                else self._sized(node, size, child)
            )
        return total

    def _sized(self, node: FieldNode, size: int, value: Any) -> int:
        assert node.selection_set is not None
        parts = list(self._fields(node.selection_set))
        if not any(p.name.value in ("nodes", "edges") for p in parts):  # a sized list of objects
            return 2 + sum(1 + self._selection(node.selection_set, item) for item in self._items(value, size))
        total = 2
        for part in parts:
            if part.selection_set is None:
                continue
            child = self._child(value, part)
            if part.name.value == "nodes":
                total += sum(1 + self._selection(part.selection_set, i) for i in self._items(child, size))
            elif part.name.value == "edges":
                total += sum(self._selection(part.selection_set, i) for i in self._items(child, size))
            else:
                total += 1 + self._selection(part.selection_set, child)
        return total


# --------------------------------------------------------------------------------------------
# Resolvers


def _gid(kind: str, legacy_id: object) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def _parse_gid(value: str, kind: str) -> str | None:
    """The legacy id in `gid://shopify/<kind>/<id>`; None for another kind; error when malformed."""
    prefix = "gid://shopify/"
    rest = value[len(prefix) :] if value.startswith(prefix) else ""
    found_kind, _, legacy = rest.partition("/")
    if not found_kind or not legacy.isdigit():
        raise GraphQLError(
            f"Invalid global id '{value[:100]}'",
            extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
        )
    return legacy if found_kind == kind else None


def _encode_cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"index": index}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        index = json.loads(base64.b64decode(cursor, validate=True))["index"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise GraphQLError("Invalid cursor for current pagination sort.") from None
    if not isinstance(index, int):
        raise GraphQLError("Invalid cursor for current pagination sort.")
    return index


def _connection(items: Sequence[Any], args: Mapping[str, Any]) -> dict[str, Any]:
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for size in (first, last):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}.")
    ordered = list(enumerate(reversed(items) if args.get("reverse") else items))
    if args.get("after"):
        after = _decode_cursor(args["after"])
        ordered = [(i, x) for i, x in ordered if i > after]
    if args.get("before"):
        before = _decode_cursor(args["before"])
        ordered = [(i, x) for i, x in ordered if i < before]
    window = ordered
    has_next = has_previous = False
    if first is not None:
        has_next = len(window) > first
        window = window[:first]
    if last is not None:
        has_previous = len(window) > last
        window = window[len(window) - last :] if last else []
    return {
        "nodes": [x for _, x in window],
        "edges": [{"cursor": _encode_cursor(i), "node": x} for i, x in window],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous or bool(args.get("after")),
            "startCursor": _encode_cursor(window[0][0]) if window else None,
            "endCursor": _encode_cursor(window[-1][0]) if window else None,
        },
    }


def _limit(items: Sequence[Any], first: int | None) -> list[Any]:
    if first is not None and not 0 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}.")
    return list(items if first is None else items[:first])


Resolver = Callable[..., Any]


def _resolvers() -> dict[tuple[str, str], Resolver]:
    def ctx(info: Any) -> FakeShopify:
        fake: FakeShopify = info.context
        return fake

    return {
        ("QueryRoot", "order"): lambda _r, info, **a: ctx(info)._order_by_gid(a["id"]),
        ("QueryRoot", "fulfillmentOrder"): lambda _r, info, **a: ctx(info)._fulfillment_order_by_gid(a["id"]),
        ("Mutation", "fulfillmentCreate"): lambda _r, info, **a: ctx(info)._fulfillment_create(
            a["fulfillment"]
        ),
        ("Mutation", "orderUpdate"): lambda _r, info, **a: ctx(info)._order_update(a["input"]),
        ("QueryRoot", "shop"): lambda _r, info: ctx(info)._shop(),
        ("QueryRoot", "currentAppInstallation"): lambda _r, info: ctx(info)._app_installation(),
        ("QueryRoot", "webhookSubscriptions"): lambda _r, info, **a: ctx(info)._webhook_subscriptions(a),
        ("Order", "id"): lambda o, _i: _gid("Order", o.id),
        ("Order", "fulfillmentOrders"): lambda o, _i, **a: _connection(o.fulfillment_orders, a),
        ("Order", "fulfillments"): lambda o, _i, **a: _limit(o.fulfillments, a.get("first")),
        ("Order", "risk"): lambda o, _i: {
            "recommendation": o.risk_recommendation,
            "assessments": [{"riskLevel": level} for level in o.risk_levels],
        },
        ("FulfillmentOrder", "id"): lambda fo, _i: _gid("FulfillmentOrder", fo.id),
        ("FulfillmentOrder", "order"): lambda fo, info: ctx(info)._orders[fo.order_id],
        ("FulfillmentOrder", "lineItems"): lambda fo, _i, **a: _connection(fo.line_items, a),
        ("FulfillmentOrderLineItem", "id"): lambda li, _i: _gid("FulfillmentOrderLineItem", li.id),
        ("FulfillmentOrderLineItem", "lineItem"): lambda li, _i: li.line,
        ("FulfillmentOrderLineItem", "remainingQuantity"): lambda li, _i: li.remaining,
        ("FulfillmentOrderLineItem", "totalQuantity"): lambda li, _i: li.total,
        ("FulfillmentOrderLineItem", "sku"): lambda li, _i: li.line.sku,
        ("LineItem", "id"): lambda line, _i: _gid("LineItem", line.line_id),
        ("Fulfillment", "id"): lambda f, _i: f.gid,
        ("Fulfillment", "createdAt"): lambda f, _i: _iso(f.created_at),
        ("Fulfillment", "order"): lambda f, info: ctx(info)._orders[f.order_id],
        ("Fulfillment", "trackingInfo"): lambda f, _i, **a: _limit(f.tracking, a.get("first")),
        ("Fulfillment", "fulfillmentLineItems"): lambda f, _i, **a: _connection(f.lines, a),
        ("FulfillmentLineItem", "id"): lambda fl, _i: _gid("FulfillmentLineItem", fl.id),
        ("FulfillmentLineItem", "lineItem"): lambda fl, _i: fl.line,
        # Locations, fulfillment services and fulfillment requests
        ("QueryRoot", "assignedFulfillmentOrders"): lambda _r, info, **a: ctx(info)._assigned(a),
        ("QueryRoot", "locations"): lambda _r, info, **a: _connection(
            [x for x in ctx(info)._locations.values() if x.active or a.get("includeInactive")], a
        ),
        ("QueryRoot", "location"): lambda _r, info, **a: ctx(info)._location_by_gid(a.get("id")),
        ("Location", "id"): lambda loc, _i: _gid("Location", loc.id),
        ("Location", "isActive"): lambda loc, _i: loc.active,
        ("Location", "isFulfillmentService"): lambda loc, _i: loc.service_id is not None,
        ("Location", "fulfillmentService"): lambda loc, info: ctx(info)._services.get(loc.service_id or 0),
        ("FulfillmentService", "id"): lambda fs, _i: _gid("FulfillmentService", fs.id),
        ("FulfillmentService", "serviceName"): lambda fs, _i: fs.name,
        ("FulfillmentService", "callbackUrl"): lambda fs, _i: fs.callback_url,
        ("FulfillmentService", "location"): lambda fs, info: ctx(info)._locations[fs.location_id],
        ("FulfillmentService", "trackingSupport"): lambda fs, _i: fs.tracking_support,
        ("FulfillmentService", "inventoryManagement"): lambda fs, _i: fs.inventory_management,
        ("FulfillmentService", "requiresShippingMethod"): lambda fs, _i: fs.requires_shipping_method,
        ("FulfillmentService", "type"): lambda _fs, _i: "THIRD_PARTY",
        ("FulfillmentOrder", "requestStatus"): lambda fo, _i: fo.request_status,
        ("FulfillmentOrder", "orderId"): lambda fo, _i: _gid("Order", fo.order_id),
        ("FulfillmentOrder", "orderName"): lambda fo, info: ctx(info)._orders[fo.order_id].name,
        ("FulfillmentOrder", "orderProcessedAt"): lambda fo, info: _iso(
            ctx(info)._orders[fo.order_id].processed_at
        ),
        ("FulfillmentOrder", "assignedLocation"): lambda fo, info: ctx(info)._assigned_location(fo),
        ("FulfillmentOrder", "destination"): lambda fo, info: {
            "id": _gid("FulfillmentOrderDestination", fo.id),
            **ctx(info)._orders[fo.order_id].destination,
        },
        ("FulfillmentOrder", "deliveryMethod"): lambda fo, info: {
            "id": _gid("DeliveryMethod", fo.id),
            "methodType": "SHIPPING",
            "presentedName": ctx(info)._orders[fo.order_id].shipping_method,
        },
        ("FulfillmentOrder", "supportedActions"): lambda fo, info: [
            {"action": a} for a in ctx(info)._supported_actions(fo)
        ],
        ("FulfillmentOrder", "merchantRequests"): lambda fo, _i, **a: _connection(
            [r for r in fo.merchant_requests if a.get("kind") in (None, r.kind)], a
        ),
        ("FulfillmentOrderMerchantRequest", "id"): lambda r, _i: _gid(
            "FulfillmentOrderMerchantRequest", r.id
        ),
        ("FulfillmentOrderMerchantRequest", "sentAt"): lambda r, _i: _iso(r.sent_at),
        ("FulfillmentOrderLineItem", "requiresShipping"): lambda li, _i: li.line.requires_shipping,
        ("FulfillmentOrderLineItem", "productTitle"): lambda li, _i: li.line.name,
        ("LineItem", "requiresShipping"): lambda line, _i: line.requires_shipping,
        # The order listing (reconciliation): content from the order document
        ("QueryRoot", "orders"): lambda _r, info, **a: ctx(info)._orders_connection(a),
        ("Order", "legacyResourceId"): lambda o, _i: o.id,
        ("Order", "number"): lambda o, _i: _doc(o).get("order_number") or 0,
        ("Order", "email"): lambda o, _i: _doc(o).get("email"),
        ("Order", "phone"): lambda o, _i: _doc(o).get("phone"),
        ("Order", "test"): lambda o, _i: _doc(o).get("test") is True,
        ("Order", "createdAt"): lambda o, _i: _doc(o).get("created_at") or _iso(o.processed_at),
        ("Order", "updatedAt"): lambda o, _i: _iso(o.updated_at or o.processed_at),
        ("Order", "cancelledAt"): lambda o, _i: _doc(o).get("cancelled_at"),
        ("Order", "cancelReason"): lambda o, _i: _upper(_doc(o).get("cancel_reason")),
        ("Order", "currencyCode"): lambda o, _i: _doc(o).get("currency") or "USD",
        ("Order", "displayFinancialStatus"): lambda o, _i: _upper(_doc(o).get("financial_status")),
        ("Order", "customAttributes"): lambda o, _i: [
            {"key": str(a.get("name") or ""), "value": None if a.get("value") is None else str(a["value"])}
            for a in _doc(o).get("note_attributes") or ()
        ],
        ("Order", "customer"): lambda o, _i: _customer(_doc(o).get("customer")),
        ("Order", "tags"): lambda o, _i: [
            t.strip() for t in str(_doc(o).get("tags") or "").split(",") if t.strip()
        ],
        ("Order", "shippingAddress"): lambda o, _i: _mailing_address(_doc(o).get("shipping_address")),
        ("Order", "billingAddress"): lambda o, _i: _mailing_address(_doc(o).get("billing_address")),
        ("Order", "lineItems"): lambda o, _i, **a: _connection(_document_lines(o), a),
        ("Order", "shippingLines"): lambda o, _i, **a: _connection(
            [
                {
                    "id": _gid("ShippingLine", i + 1),
                    "title": str(x.get("title") or ""),
                    "code": x.get("code"),
                    "isRemoved": x.get("is_removed") is True,
                }
                for i, x in enumerate(_doc(o).get("shipping_lines") or ())
                if a.get("includeRemovals") or x.get("is_removed") is not True
            ],
            a,
        ),
        ("LineItem", "title"): lambda line, _i: line.title or line.name,
        ("LineItem", "currentQuantity"): lambda line, _i: (
            line.quantity if line.current_quantity is None else line.current_quantity
        ),
        ("LineItem", "unfulfilledQuantity"): lambda line, _i: (
            line.quantity if line.unfulfilled_quantity is None else line.unfulfilled_quantity
        ),
        ("LineItem", "isGiftCard"): lambda line, _i: line.gift_card,
        ("LineItem", "customAttributes"): lambda line, _i: [
            {"key": str(p.get("name") or ""), "value": None if p.get("value") is None else str(p["value"])}
            for p in line.properties
        ],
        ("LineItem", "originalUnitPriceSet"): lambda line, _i: {
            "shopMoney": {"amount": line.price, "currencyCode": line.currency},
            "presentmentMoney": {"amount": line.price, "currencyCode": line.currency},
        },
        ("Mutation", "fulfillmentServiceCreate"): lambda _r, info, **a: ctx(info)._service_create(a),
        ("Mutation", "fulfillmentServiceUpdate"): lambda _r, info, **a: ctx(info)._service_update(a),
        ("Mutation", "fulfillmentOrderAcceptFulfillmentRequest"): lambda _r, info, **a: ctx(info)._answer(
            a["id"], "SUBMITTED", "ACCEPTED", "IN_PROGRESS"
        ),
        ("Mutation", "fulfillmentOrderRejectFulfillmentRequest"): lambda _r, info, **a: ctx(info)._answer(
            a["id"], "SUBMITTED", "REJECTED", None
        ),
        ("Mutation", "fulfillmentOrderAcceptCancellationRequest"): lambda _r, info, **a: ctx(info)._answer(
            a["id"], "CANCELLATION_REQUESTED", "CANCELLATION_ACCEPTED", "CLOSED"
        ),
        ("Mutation", "fulfillmentOrderRejectCancellationRequest"): lambda _r, info, **a: ctx(info)._answer(
            a["id"], "CANCELLATION_REQUESTED", "CANCELLATION_REJECTED", None
        ),
        ("Mutation", "fulfillmentOrderMove"): lambda _r, info, **a: ctx(info)._move(a),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _doc(order: FakeOrder) -> dict[str, Any]:
    return order.document or {}


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def _customer(customer: Any) -> dict[str, Any] | None:
    """A REST `customer` block as GraphQL's `Customer` (only its default e-mail and phone)."""
    if not isinstance(customer, dict):
        return None
    email, phone = customer.get("email"), customer.get("phone")
    return {
        "id": _gid("Customer", customer.get("id") or 1),
        "defaultEmailAddress": {"emailAddress": email} if email else None,
        "defaultPhoneNumber": {"phoneNumber": phone} if phone else None,
    }


def _mailing_address(address: Any) -> dict[str, Any] | None:
    """A REST address block as GraphQL's `MailingAddress`."""
    if not isinstance(address, dict):
        return None
    return {
        "name": address.get("name"),
        "firstName": address.get("first_name"),
        "lastName": address.get("last_name"),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
        "countryCodeV2": (address.get("country_code") or "").upper() or None,
        "phone": address.get("phone"),
    }


def _document_lines(order: FakeOrder) -> list[FakeLine]:
    """The order's line items as its document has them (or as `add_order` seeded them)."""
    if order.document is None:
        return list(order.lines)
    currency = str(order.document.get("currency") or "USD")
    return [
        FakeLine(
            line_id=str(item["id"]),
            sku=item.get("sku"),
            quantity=int(item["quantity"]),
            name=str(item.get("name") or item.get("title") or "Item"),
            requires_shipping=item.get("requires_shipping") is not False,
            title=item.get("title"),
            current_quantity=item.get("current_quantity"),
            unfulfilled_quantity=item.get("fulfillable_quantity"),
            gift_card=item.get("gift_card") is True,
            price=str(item.get("price") or "0.00"),
            currency=currency,
            properties=tuple(p for p in item.get("properties") or () if isinstance(p, dict)),
        )
        for item in order.document.get("line_items") or ()
    ]


_SEARCH_TERM = re.compile(r"^updated_at:(>=|<=|>|<)'?([^']+?)'?$")


def _updated_filter(query: str | None) -> Callable[[datetime], bool]:
    """Shopify's search syntax, the part the fake understands: `updated_at` comparisons joined by
    spaces or AND. Anything else is refused, so a query the fake cannot honour fails loudly."""
    checks: list[Callable[[datetime], bool]] = []
    for term in (query or "").replace(" AND ", " ").split():
        match = _SEARCH_TERM.match(term)
        if match is None:
            raise GraphQLError(f"the fake Shopify does not understand the search term {term[:80]!r}")
        try:
            bound = datetime.fromisoformat(match.group(2).replace("Z", "+00:00"))
        except ValueError:
            raise GraphQLError(f"Invalid date in the search term {term[:80]!r}") from None
        op = match.group(1)
        checks.append(
            {
                ">": lambda t, b=bound: t > b,
                ">=": lambda t, b=bound: t >= b,
                "<": lambda t, b=bound: t < b,
                "<=": lambda t, b=bound: t <= b,
            }[op]
        )
    return lambda t: all(check(t) for check in checks)


def fake_schema_sdl() -> str:
    """The whole fake schema: push-back's part (`SCHEMA_SDL`) and inventory's (`INVENTORY_SDL`)."""
    return SCHEMA_SDL + INVENTORY_SDL


def build_fake_schema() -> GraphQLSchema:
    schema = build_schema(fake_schema_sdl())
    for (type_name, field_name), resolve in {**_resolvers(), **_inventory_resolvers()}.items():
        graphql_type = schema.get_type(type_name)
        graphql_type.fields[field_name].resolve = resolve  # type: ignore[union-attr]
    return schema


def _user_error(path: Iterable[str], message: str) -> dict[str, Any]:
    return {"field": list(path), "message": message}


def _max_cost_exceeded(requested: int) -> dict[str, Any]:
    message = f"Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
    extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}
    return {"errors": [{"message": message, "extensions": {**extensions, "documentation": RATE_LIMIT_DOCS}}]}


def _throttled(requested: int, throttle_status: dict[str, Any]) -> dict[str, Any]:
    return {
        "errors": [
            {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS}}
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": throttle_status,
            }
        },
    }


def _is_url(value: str) -> bool:
    """What Shopify accepts as a tracking URL: http(s)://host..., nothing percent-encoded in
    place of `://` and no whitespace anywhere (a trailing newline included)."""
    scheme, sep, rest = value.partition("://")
    return (
        bool(sep)
        and scheme.lower() in ("http", "https")
        and bool(rest)
        and "%3a%2f%2f" not in value.lower()
        and not any(c.isspace() for c in value)
    )


# --------------------------------------------------------------------------------------------
# The fake


OrderSource = Callable[[str], Sequence[tuple[str, str | None, int]] | None]
"""Lines (REST line id, sku, quantity) of an order the fake was not seeded with, or None."""


class FakeShopify:
    """One shop's Admin GraphQL API state. Thread-safe: calls are handled one at a time.

    `order_source` seeds an unknown order on first sight (`fba-bridge run --with-fakes` reads it
    from the bridge's own database, so any order sent to the bridge exists in the fake shop)."""

    def __init__(
        self,
        access_token: str,
        clock: Clock | None = None,
        *,
        maximum_available: float = 1000.0,
        restore_rate: float = 50.0,
        shop_name: str = "shop-a",
        access_scopes: Sequence[str] = DEFAULT_ACCESS_SCOPES,
        app_secret: str | None = None,
        callback_transport: httpx.BaseTransport | None = None,
        order_source: OrderSource | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.order_source = order_source
        self.shop_name = shop_name
        self.access_scopes: list[str] = list(access_scopes)
        self.webhook_subscriptions: list[FakeWebhookSubscription] = []
        self.app_secret = app_secret  # signs callbacks to fulfillment services, as Shopify does
        self.callback_transport = callback_transport
        self.callbacks: list[FakeCallback] = []
        self.bucket = CostBucket(self.clock, maximum_available, restore_rate)
        self.schema = build_fake_schema()
        self._token = access_token
        self._revoked = False
        self._lock = threading.RLock()
        self._orders: dict[str, FakeOrder] = {}
        self._fulfillment_orders: dict[int, FakeFulfillmentOrder] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._ledger: Counter[tuple[str, str]] = Counter()
        self._next_id = 5_000_000_001
        self._locations: dict[int, FakeLocation] = {}
        self._services: dict[int, FakeFulfillmentService] = {}
        self.primary_location = self.add_location(PRIMARY_LOCATION)
        self.inventory = FakeShopifyInventory(self)

    # -- locations and fulfillment services --------------------------------------------------------

    def add_location(self, name: str, *, active: bool = True) -> str:
        """A merchant-managed location; returns its gid."""
        with self._lock:
            location = FakeLocation(self._new_id(), name, active)
            self._locations[location.id] = location
            return _gid("Location", location.id)

    def add_fulfillment_service(
        self, name: str, callback_url: str | None = None, *, own: bool = False
    ) -> str:
        """Another app's fulfillment service (`own=False`, e.g. print on demand) or one the calling
        app registered; returns its location's gid."""
        with self._lock:
            service, errors = self._new_service(name, callback_url, own)
            if errors:
                raise ValueError(errors[0]["message"])
            assert service is not None
            return _gid("Location", service.location_id)

    def location_gid(self, name: str) -> str:
        with self._lock:
            return _gid("Location", self._location_named(name).id)

    def fulfillment_services(self) -> list[FakeFulfillmentService]:
        with self._lock:
            return [copy.copy(x) for x in self._services.values()]

    def _location_named(self, name_or_gid: str) -> FakeLocation:
        for location in self._locations.values():
            if name_or_gid in (location.name, _gid("Location", location.id)):
                return location
        raise KeyError(f"no location {name_or_gid!r}")

    # -- seeding and inspection ------------------------------------------------------------------

    def add_order(
        self,
        order_id: str,
        lines: Sequence[tuple[str, str | None, int]],
        *,
        name: str | None = None,
        note: str | None = None,
        fulfillment_order_groups: Sequence[Sequence[str | tuple[str, int]]] | None = None,
        locations: str | Sequence[str] | None = None,
        no_shipping: Collection[str] = (),
        destination: Mapping[str, str | None] | None = None,
        shipping_method: str = "Standard Shipping",
    ) -> None:
        """Seed an order: `lines` are (REST line id, sku, quantity).

        One OPEN fulfillment order holds every line, unless `fulfillment_order_groups` says what
        each fulfillment order holds: a line id (all of its units) or (line id, units), as after
        Shopify split a fulfillment order. Every unit must be in exactly one group. `locations`
        names the location (name or gid) of every group, or one for all; the default is the
        shop's primary location. Lines in `no_shipping` do not require shipping.
        """
        order_id = str(order_id)
        fake_lines = [
            FakeLine(str(line_id), sku, int(qty), requires_shipping=str(line_id) not in no_shipping)
            for line_id, sku, qty in lines
        ]
        by_id = {line.line_id: line for line in fake_lines}
        raw_groups = fulfillment_order_groups or [list(by_id)]
        groups = [
            [
                (str(e), by_id[str(e)].quantity) if isinstance(e, str) else (str(e[0]), int(e[1]))
                for e in group
            ]
            for group in raw_groups
        ]
        placed: Counter[str] = Counter()
        for group in groups:
            for line_id, quantity in group:
                placed[line_id] += quantity
        if placed != Counter({line.line_id: line.quantity for line in fake_lines}):
            raise ValueError("fulfillment_order_groups must place every unit of every line exactly once")
        names = [locations] * len(groups) if isinstance(locations, str) else list(locations or [])
        names += [PRIMARY_LOCATION] * (len(groups) - len(names))
        with self._lock:
            if order_id in self._orders:
                raise ValueError(f"order {order_id} already exists")
            fulfillment_orders = []
            for group, location_name in zip(groups, names, strict=False):
                items = [FakeFulfillmentOrderLineItem(self._new_id(), by_id[i], q, q) for i, q in group]
                location = self._location_named(location_name)
                fo = FakeFulfillmentOrder(self._new_id(), order_id, "OPEN", items, location.id)
                self._fulfillment_orders[fo.id] = fo
                fulfillment_orders.append(fo)
            self._orders[order_id] = FakeOrder(
                order_id,
                name or f"#{order_id}",
                note,
                fake_lines,
                fulfillment_orders,
                destination=dict(destination or DEFAULT_DESTINATION),
                shipping_method=shipping_method,
                processed_at=self.clock.now(),
            )

    def put_order(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Create or change an order as checkout or the merchant would. `document` is the REST
        order, the shape of an `orders/*` webhook body. The fake stamps `updated_at` with its
        clock (and `created_at` the first time) and returns the stored document: the body the
        `orders/create` or `orders/updated` webhook of this change carries. The `orders` listing
        serves the same content through GraphQL."""
        with self._lock:
            doc = copy.deepcopy(dict(document))
            order_id = str(doc["id"])
            now = self.clock.now()
            doc["updated_at"] = _iso(now)
            existing = self._orders.get(order_id)
            if existing is not None and existing.document:
                doc["created_at"] = existing.document.get("created_at") or _iso(now)
            else:
                doc["created_at"] = doc.get("created_at") or _iso(now)
            if existing is None:
                self.add_order(
                    order_id,
                    [
                        (str(item["id"]), item.get("sku"), int(item["quantity"]))
                        for item in doc.get("line_items") or ()
                    ],
                    name=doc.get("name"),
                    note=doc.get("note"),
                )
            order = self._orders[order_id]
            order.document = doc
            order.updated_at = now
            order.note = doc.get("note")
            return copy.deepcopy(doc)

    def order_document(self, order_id: str) -> dict[str, Any]:
        """The stored document of an order `put_order` made (a webhook body of its latest state)."""
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)].document or {})

    def set_risk(self, order_id: str, recommendation: str, levels: Sequence[str] = ("HIGH",)) -> None:
        """What Shopify's fraud analysis says about the order (`Order.risk`)."""
        with self._lock:
            order = self._orders[str(order_id)]
            order.risk_recommendation = recommendation
            order.risk_levels = tuple(levels)

    def set_fulfillment_order_status(self, order_id: str, index: int, status: str) -> None:
        """Put the order's `index`-th fulfillment order on hold, schedule it, close it..."""
        with self._lock:
            self._orders[str(order_id)].fulfillment_orders[index].status = status

    def merchant_fulfill(self, order_id: str, index: int, quantities: Mapping[str, int]) -> None:
        """The merchant (or another app) fulfils units of a fulfillment order by hand, without
        tracking: `quantities` maps REST line ids to units."""
        with self._lock:
            fo = self._orders[str(order_id)].fulfillment_orders[index]
            lines = []
            for li in fo.line_items:
                take = min(quantities.get(li.line.line_id, 0), li.remaining)
                if take:
                    li.remaining -= take
                    lines.append(FakeFulfillmentLine(self._new_id(), li.line, take, fo.id))
            if lines:
                self._record_fulfillment(self._orders[str(order_id)], [fo], lines, (), False)

    def request_fulfillment(self, order_id: str, index: int = 0, message: str | None = None) -> int | None:
        """The merchant presses "Request fulfillment": the fulfillment order (at a fulfillment
        service's location, OPEN, not yet or no longer requested) becomes SUBMITTED and Shopify
        posts `{"kind": "FULFILLMENT_REQUEST"}` to the service's callback. Returns the callback's
        HTTP status (None when the service has no callback URL)."""
        with self._lock:
            fo = self._orders[str(order_id)].fulfillment_orders[index]
            service = self._service_of(fo)
            if service is None or fo.status != "OPEN" or fo.request_status not in ("UNSUBMITTED", "REJECTED"):
                raise ValueError(
                    f"fulfillment order {fo.id} cannot be requested ({fo.status}/{fo.request_status})"
                )
            fo.request_status = "SUBMITTED"
            fo.merchant_requests.append(
                FakeMerchantRequest(self._new_id(), "FULFILLMENT_REQUEST", message, self.clock.now())
            )
        return self._notify(service, "FULFILLMENT_REQUEST")

    def request_cancellation(self, order_id: str, index: int = 0, message: str | None = None) -> int | None:
        """The merchant asks the service to cancel an accepted fulfillment order; Shopify posts
        `{"kind": "CANCELLATION_REQUEST"}` to the service's callback."""
        with self._lock:
            fo = self._orders[str(order_id)].fulfillment_orders[index]
            service = self._service_of(fo)
            if service is None or fo.request_status != "ACCEPTED" or fo.status != "IN_PROGRESS":
                raise ValueError(f"fulfillment order {fo.id} has no accepted request to cancel")
            fo.request_status = "CANCELLATION_REQUESTED"
            fo.merchant_requests.append(
                FakeMerchantRequest(self._new_id(), "CANCELLATION_REQUEST", message, self.clock.now())
            )
        return self._notify(service, "CANCELLATION_REQUEST")

    def _service_of(self, fo: FakeFulfillmentOrder) -> FakeFulfillmentService | None:
        return self._services.get(self._locations[fo.location_id].service_id or 0)

    def _notify(self, service: FakeFulfillmentService, kind: str) -> int | None:
        if not service.callback_url:
            return None
        body = json.dumps({"kind": kind}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Shop-Domain": f"{self.shop_name}.myshopify.com",
        }
        if self.app_secret is not None:
            digest = hmac.new(self.app_secret.encode(), body, hashlib.sha256).digest()
            headers[HMAC_HEADER] = base64.b64encode(digest).decode()
        url = f"{service.callback_url.rstrip('/')}/fulfillment_order_notification"
        with httpx.Client(transport=self.callback_transport, timeout=5.0) as client:
            try:
                status = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
        with self._lock:
            self.callbacks.append(FakeCallback(url, kind, status))
        return status

    def fulfillments(self, order_id: str) -> list[FakeFulfillment]:
        with self._lock:
            return list(self._orders[str(order_id)].fulfillments)

    def fulfillment_orders(self, order_id: str) -> list[FakeFulfillmentOrder]:
        with self._lock:
            return copy.deepcopy(self._orders[str(order_id)].fulfillment_orders)

    def remaining(self, order_id: str) -> dict[str, int]:
        """REST line id -> units not yet fulfilled, over all fulfillment orders."""
        out: dict[str, int] = {}
        for fo in self.fulfillment_orders(order_id):
            for li in fo.line_items:
                out[li.line.line_id] = out.get(li.line.line_id, 0) + li.remaining
        return out

    def note(self, order_id: str) -> str | None:
        with self._lock:
            return self._orders[str(order_id)].note

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def calls(self, name: str, outcome: str | None = None) -> int:
        """Calls whose operation name or a root field is `name` (optionally with that outcome)."""
        with self._lock:
            return sum(n for (key, out), n in self._ledger.items() if key == name and outcome in (None, out))

    # -- controls -----------------------------------------------------------------------------------

    def revoke(self) -> None:
        """Every later call gets 401, as after the merchant uninstalls the app."""
        with self._lock:
            self._revoked = True

    def restore_access(self) -> None:
        with self._lock:
            self._revoked = False

    def fail_next(
        self, name: str, status: int = 503, count: int = 1, retry_after: float | None = None
    ) -> None:
        if not 400 <= status <= 599 or count < 1:
            raise ValueError("status must be 4xx/5xx and count at least 1")
        with self._lock:
            self._faults.append(_Fault(name, "status", count, status, retry_after))

    def accept_then_drop_next(self, name: str, count: int = 1) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(_Fault(name, "accept_then_drop", count))

    def add_webhook_subscription(self, topic: str, uri: str) -> None:
        """A subscription the app made through the API (`ORDERS_CREATE`, ...)."""
        with self._lock:
            self.webhook_subscriptions.append(
                FakeWebhookSubscription(self._new_id(), topic.upper().replace("/", "_"), uri)
            )

    def set_available(self, points: float) -> None:
        """Set what the cost bucket holds now (it keeps restoring from there)."""
        with self._lock:
            self.bucket.set_available(points)

    # -- one HTTP call ------------------------------------------------------------------------------

    def handle(self, *, api_version: str, token: str | None, body: bytes, content_type: str) -> FakeAnswer:
        with self._lock:
            params = self._params(body, content_type)
            if self._revoked or not token or token != self._token:
                name, variables = (params[2], params[1]) if params else (None, {})
                self._record(name, (), variables, "unauthorized", api_version)
                return FakeAnswer(401, UNAUTHORIZED_BODY)
            if params is None:
                self._record(None, (), {}, "invalid", api_version)
                return FakeAnswer(400, {"errors": {"query": "Required parameter missing or invalid"}})
            query, variables, operation_name = params
            try:
                document = parse(query)
            except GraphQLError as exc:
                self._record(operation_name, (), variables, "invalid", api_version)
                return FakeAnswer(200, {"errors": [exc.formatted]})
            operation = get_operation_ast(document, operation_name)
            fields = self._root_fields(operation) if operation else ()
            name = operation.name.value if operation and operation.name else operation_name
            errors = validate(self.schema, document)
            if operation is None and not errors:
                errors = [
                    GraphQLError(
                        f"No operation named '{operation_name}'"
                        if operation_name
                        else "An operation name is required"
                    )
                ]
            if errors or operation is None:
                self._record(name, fields, variables, "invalid", api_version)
                return FakeAnswer(200, {"errors": [e.formatted for e in errors]})
            fault = self._take_fault(name, fields)
            if fault is not None and fault.kind == "status":
                self._record(name, fields, variables, f"fault:{fault.status}", api_version)
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return FakeAnswer(fault.status, {"errors": HTTPStatus(fault.status).phrase}, headers)
            return self._execute(document, operation, name, fields, variables, api_version, fault)

    def _execute(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        name: str | None,
        fields: tuple[str, ...],
        variables: dict[str, Any],
        api_version: str,
        fault: _Fault | None,
    ) -> FakeAnswer:
        cost = QueryCost(document, operation, variables)
        requested = cost.requested()
        if requested > MAX_QUERY_COST:
            self._record(name, fields, variables, "invalid", api_version)
            return FakeAnswer(200, _max_cost_exceeded(requested))
        if requested > self.bucket.available():
            self._record(name, fields, variables, "throttled", api_version)
            return FakeAnswer(200, _throttled(requested, self.bucket.status()))
        result: ExecutionResult = execute_sync(
            self.schema, document, context_value=self, variable_values=variables, operation_name=name
        )
        actual = cost.actual(result.data) if operation.operation is OperationType.QUERY else requested
        self.bucket.spend(actual)
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["data"] = result.data
        answer["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self.bucket.status(),
            }
        }
        dropped = fault is not None and fault.kind == "accept_then_drop"
        self._record(name, fields, variables, "dropped" if dropped else "ok", api_version)
        return FakeAnswer(200, answer, drop=dropped)

    @staticmethod
    def _params(body: bytes, content_type: str) -> tuple[str, dict[str, Any], str | None] | None:
        if content_type == "application/graphql":
            return body.decode("utf-8", "replace"), {}, None
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return None
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
        if not isinstance(variables, dict) or not isinstance(operation_name, str | None):
            return None
        return payload["query"], variables, operation_name

    @staticmethod
    def _root_fields(operation: OperationDefinitionNode) -> tuple[str, ...]:
        return tuple(s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode))

    def _take_fault(self, name: str | None, fields: tuple[str, ...]) -> _Fault | None:
        for fault in self._faults:
            if fault.name == name or fault.name in fields:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _record(
        self,
        name: str | None,
        fields: tuple[str, ...],
        variables: dict[str, Any],
        outcome: str,
        api_version: str,
    ) -> None:
        self._requests.append(RecordedRequest(name, fields, copy.deepcopy(variables), outcome, api_version))
        for key in {name, *fields} - {None}:
            self._ledger[(str(key), outcome)] += 1

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- resolvers' access to the state ------------------------------------------------------------

    def _order_by_gid(self, value: str) -> FakeOrder | None:
        legacy = _parse_gid(value, "Order")
        if not legacy:
            return None
        if legacy not in self._orders and self.order_source is not None:
            lines = self.order_source(legacy)
            if lines:
                self.add_order(legacy, lines)
        return self._orders.get(legacy)

    def _fulfillment_order_by_gid(self, value: str) -> FakeFulfillmentOrder | None:
        legacy = _parse_gid(value, "FulfillmentOrder")
        return self._fulfillment_orders.get(int(legacy)) if legacy else None

    def _fulfillment_create(self, data: Mapping[str, Any]) -> dict[str, Any]:
        plan, errors = self._fulfillment_plan(data)
        tracking = self._tracking(data.get("trackingInfo") or {}, errors)
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        order = self._orders[plan[0][0].order_id]
        lines = []
        for fo, items in plan:
            for li, quantity in items:
                li.remaining -= quantity
                lines.append(FakeFulfillmentLine(self._new_id(), li.line, quantity, fo.id))
        fulfillment = self._record_fulfillment(
            order, [fo for fo, _ in plan], lines, tracking, bool(data.get("notifyCustomer"))
        )
        return {"fulfillment": fulfillment, "userErrors": []}

    def _record_fulfillment(
        self,
        order: FakeOrder,
        fulfillment_orders: list[FakeFulfillmentOrder],
        lines: list[FakeFulfillmentLine],
        tracking: tuple[FakeTracking, ...],
        notify: bool,
    ) -> FakeFulfillment:
        for fo in fulfillment_orders:
            fo.status = "CLOSED" if all(li.remaining == 0 for li in fo.line_items) else "IN_PROGRESS"
        fulfillment = FakeFulfillment(
            id=self._new_id(),
            order_id=order.id,
            name=f"{order.name}-F{len(order.fulfillments) + 1}",
            status="SUCCESS",
            created_at=self.clock.now(),
            tracking=tracking,
            lines=tuple(lines),
            notify_customer=notify,
        )
        order.fulfillments.append(fulfillment)
        return fulfillment

    def _fulfillment_plan(
        self, data: Mapping[str, Any]
    ) -> tuple[list[tuple[FakeFulfillmentOrder, list[tuple[FakeFulfillmentOrderLineItem, int]]]], list[Any]]:
        plan: list[tuple[FakeFulfillmentOrder, list[tuple[FakeFulfillmentOrderLineItem, int]]]] = []
        errors: list[Any] = []
        groups = data.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            errors.append(_user_error(["fulfillment"], "Line items by fulfillment order can't be blank."))
        for g, group in enumerate(groups):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(g)]
            known_errors = len(errors)
            legacy = _parse_gid(group["fulfillmentOrderId"], "FulfillmentOrder")
            fo = self._fulfillment_orders.get(int(legacy)) if legacy else None
            if fo is None:
                errors.append(_user_error([*path, "fulfillmentOrderId"], "Fulfillment order does not exist."))
                continue
            if fo.status not in ("OPEN", "IN_PROGRESS"):
                errors.append(
                    _user_error(
                        [*path, "fulfillmentOrderId"],
                        f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.",
                    )
                )
                continue
            service = self._service_of(fo)
            if service is not None and not service.own:
                errors.append(
                    _user_error(
                        [*path, "fulfillmentOrderId"],
                        f"Fulfillment order {fo.id} is assigned to a location managed by another "
                        "fulfillment service.",
                    )
                )
                continue
            if service is not None and fo.request_status not in ACCEPTED_REQUEST_STATUSES:
                errors.append(
                    _user_error(
                        [*path, "fulfillmentOrderId"],
                        f"Fulfillment order {fo.id} has not been accepted by the fulfillment service.",
                    )
                )
                continue
            requested = group.get("fulfillmentOrderLineItems")
            items: list[tuple[FakeFulfillmentOrderLineItem, int]] = []
            if requested is None:
                items = [(li, li.remaining) for li in fo.line_items if li.remaining > 0]
            by_id = {_gid("FulfillmentOrderLineItem", li.id): li for li in fo.line_items}
            taken: Counter[int] = Counter()
            for i, item in enumerate(requested or []):
                li = by_id.get(item["id"])
                if li is None:
                    errors.append(
                        _user_error(
                            [*path, "fulfillmentOrderLineItems", str(i), "id"],
                            "Fulfillment order line item does not exist.",
                        )
                    )
                    continue
                taken[li.id] += item["quantity"]
                if item["quantity"] <= 0 or taken[li.id] > li.remaining:
                    errors.append(
                        _user_error(
                            ["fulfillment"], "Invalid fulfillment order line item quantity requested."
                        )
                    )
                    continue
                items.append((li, item["quantity"]))
            if not items and len(errors) == known_errors:
                errors.append(_user_error([*path], "Fulfillment order has no line items left to fulfill."))
            plan.append((fo, items))
        if len({fo.order_id for fo, _ in plan}) > 1:
            errors.append(
                _user_error(["fulfillment"], "All fulfillment orders must belong to the same order.")
            )
        return plan, errors

    @staticmethod
    def _tracking(data: Mapping[str, Any], errors: list[Any]) -> tuple[FakeTracking, ...]:
        numbers = [data["number"]] if data.get("number") else list(data.get("numbers") or [])
        urls = [data["url"]] if data.get("url") else list(data.get("urls") or [])
        for url in urls:
            if not _is_url(str(url)):
                errors.append(_user_error(["fulfillment", "trackingInfo", "url"], "Tracking url is invalid."))
        company = data.get("company")
        return tuple(
            FakeTracking(company, number, urls[i] if i < len(urls) else None)
            for i, number in enumerate(numbers)
        )

    def _location_by_gid(self, value: str | None) -> FakeLocation | None:
        legacy = _parse_gid(value, "Location") if value else None
        return self._locations.get(int(legacy)) if legacy else None

    def _shop(self) -> dict[str, Any]:
        return {
            "id": _gid("Shop", 1),
            "name": self.shop_name,
            "myshopifyDomain": f"{self.shop_name}.myshopify.com",
            "fulfillmentServices": list(self._services.values()),
        }

    def _app_installation(self) -> dict[str, Any]:
        scopes = [{"handle": h, "description": f"Access scope {h}"} for h in self.access_scopes]
        return {"id": _gid("AppInstallation", 1), "accessScopes": scopes}

    def _webhook_subscriptions(self, args: Mapping[str, Any]) -> dict[str, Any]:
        topics = set(args.get("topics") or ())
        chosen = [
            {"id": _gid("WebhookSubscription", w.id), "topic": w.topic, "uri": w.uri}
            for w in self.webhook_subscriptions
            if not topics or w.topic in topics
        ]
        return _connection(chosen, args)

    def _assigned_location(self, fo: FakeFulfillmentOrder) -> dict[str, Any]:
        location = self._locations.get(fo.location_id)
        return {"name": location.name if location else "Deleted location", "location": location}

    def _assigned(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Fulfillment orders at the locations of services the calling app registered."""
        own = {x.location_id for x in self._services.values() if x.own}
        wanted_locations = args.get("locationIds")
        if wanted_locations is not None:
            own &= {int(legacy) for legacy in (_parse_gid(x, "Location") for x in wanted_locations) if legacy}
        status = args.get("assignmentStatus")
        found = []
        for fo in self._fulfillment_orders.values():
            if fo.location_id not in own:
                continue
            if status is None and fo.status == "CLOSED":
                continue
            if status is not None and fo.request_status != ASSIGNMENT_FILTERS[status]:
                continue
            found.append(fo)
        return _connection(found, args)

    def _supported_actions(self, fo: FakeFulfillmentOrder) -> list[str]:
        service = self._service_of(fo)
        if fo.status in ("CLOSED", "CANCELLED", "INCOMPLETE"):
            return []
        if fo.status == "ON_HOLD":
            return ["RELEASE_HOLD", "MOVE"]
        if service is None:
            return ["CREATE_FULFILLMENT", "MOVE", "HOLD"]
        if fo.request_status in ("UNSUBMITTED", "REJECTED"):
            return ["REQUEST_FULFILLMENT", "MOVE", "HOLD"]
        if fo.request_status == "SUBMITTED":
            return ["CANCEL_FULFILLMENT_ORDER"]
        if fo.request_status in ("ACCEPTED", "CANCELLATION_REJECTED"):
            return ["CREATE_FULFILLMENT", "REQUEST_CANCELLATION"]
        return []

    def _new_service(
        self, name: str, callback_url: str | None, own: bool
    ) -> tuple[FakeFulfillmentService | None, list[Any]]:
        if any(x.name.casefold() == name.casefold() for x in self._services.values()):
            return None, [_user_error(["name"], "Name has already been taken")]
        if callback_url is not None and not _is_url(callback_url):
            return None, [_user_error(["callbackUrl"], "Callback url is invalid")]
        location = FakeLocation(self._new_id(), name)
        service = FakeFulfillmentService(
            self._new_id(), name, name.lower().replace(" ", "-"), callback_url, location.id, own
        )
        location.service_id = service.id
        self._locations[location.id] = location
        self._services[service.id] = service
        return service, []

    def _service_create(self, args: Mapping[str, Any]) -> dict[str, Any]:
        service, errors = self._new_service(args["name"], args.get("callbackUrl"), own=True)
        if service is not None:
            service.tracking_support = bool(args.get("trackingSupport"))
            service.inventory_management = bool(args.get("inventoryManagement"))
            service.requires_shipping_method = args.get("requiresShippingMethod") is not False
        return {"fulfillmentService": service, "userErrors": errors}

    def _service_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        legacy = _parse_gid(args["id"], "FulfillmentService")
        service = self._services.get(int(legacy)) if legacy else None
        if service is None or not service.own:
            return {
                "fulfillmentService": None,
                "userErrors": [_user_error(["id"], "Fulfillment service not found")],
            }
        if args.get("callbackUrl") is not None:
            if not _is_url(args["callbackUrl"]):
                return {
                    "fulfillmentService": None,
                    "userErrors": [_user_error(["callbackUrl"], "Callback url is invalid")],
                }
            service.callback_url = args["callbackUrl"]
        if args.get("name"):
            service.name = args["name"]
        return {"fulfillmentService": service, "userErrors": []}

    def _answer(self, fo_gid: str, needed: str, request_status: str, status: str | None) -> dict[str, Any]:
        """A fulfillment service answers a request: only while the request is `needed`, and only for
        fulfillment orders at its own location."""
        fo = self._fulfillment_order_by_gid(fo_gid)
        service = self._service_of(fo) if fo is not None else None
        if fo is None or service is None or not service.own:
            return {
                "fulfillmentOrder": None,
                "userErrors": [_user_error(["id"], "Fulfillment order does not exist.")],
            }
        if fo.request_status != needed:
            message = (
                f"Cannot change the request status of fulfillment order {fo.id} from "
                f"{fo.request_status.lower()} to {request_status.lower()}."
            )
            return {"fulfillmentOrder": None, "userErrors": [_user_error(["id"], message)]}
        fo.request_status = request_status
        if status is not None:
            fo.status = status
        return {"fulfillmentOrder": fo, "userErrors": []}

    def _move(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """`fulfillmentOrderMove`: only while Shopify lists MOVE among the fulfillment order's
        supported actions; the whole fulfillment order moves when every unfulfilled unit goes and
        nothing was fulfilled from it, else the units go to a new fulfillment order there."""

        def refused(path: str, message: str) -> dict[str, Any]:
            return {
                "movedFulfillmentOrder": None,
                "originalFulfillmentOrder": None,
                "userErrors": [{"code": None, "field": [path], "message": message}],
            }

        fo = self._fulfillment_order_by_gid(args["id"])
        if fo is None:
            return refused("id", "Fulfillment order does not exist.")
        location = self._location_by_gid(args["newLocationId"])
        if location is None or not location.active:
            return refused("newLocationId", "Location does not exist.")
        if "MOVE" not in self._supported_actions(fo):
            return refused("id", f"Cannot move fulfillment order {fo.id} in its current state.")
        if location.id == fo.location_id:
            return refused("newLocationId", "The fulfillment order is already assigned to this location.")
        requested = args.get("fulfillmentOrderLineItems")
        by_gid = {_gid("FulfillmentOrderLineItem", li.id): li for li in fo.line_items}
        if requested is None:
            wanted = {li.id: li.remaining for li in fo.line_items if li.remaining > 0}
        else:
            wanted = {}
            for entry in requested:
                li = by_gid.get(entry["id"])
                quantity = int(entry["quantity"])
                if li is None:
                    return refused("fulfillmentOrderLineItems", "Fulfillment order line item does not exist.")
                if quantity < 1 or quantity + wanted.get(li.id, 0) > li.remaining:
                    return refused("fulfillmentOrderLineItems", "Quantity is invalid.")
                wanted[li.id] = wanted.get(li.id, 0) + quantity
        if not wanted:
            return refused("id", "The fulfillment order has nothing left to move.")
        whole = all(li.total == li.remaining and wanted.get(li.id, 0) == li.remaining for li in fo.line_items)
        if whole:
            fo.location_id = location.id
            fo.request_status = "UNSUBMITTED"
            return {"movedFulfillmentOrder": fo, "originalFulfillmentOrder": fo, "userErrors": []}
        items = []
        for li in fo.line_items:
            quantity = wanted.get(li.id, 0)
            if quantity:
                li.remaining -= quantity
                li.total -= quantity
                items.append(FakeFulfillmentOrderLineItem(self._new_id(), li.line, quantity, quantity))
        moved = FakeFulfillmentOrder(self._new_id(), fo.order_id, "OPEN", items, location.id)
        self._fulfillment_orders[moved.id] = moved
        self._orders[fo.order_id].fulfillment_orders.append(moved)
        if all(li.remaining == 0 for li in fo.line_items) and fo.status != "CLOSED":
            fo.status = "CLOSED"
        return {"movedFulfillmentOrder": moved, "originalFulfillmentOrder": fo, "userErrors": []}

    def _order_update(self, data: Mapping[str, Any]) -> dict[str, Any]:
        order = self._order_by_gid(data["id"])
        if order is None:
            return {"order": None, "userErrors": [_user_error(["id"], "Order does not exist")]}
        if "note" in data:
            order.note = data["note"]
            if order.document is not None:  # an edit changes the order's updated_at, as in Shopify
                order.document["note"] = data["note"]
                order.updated_at = self.clock.now()
                order.document["updated_at"] = _iso(order.updated_at)
        return {"order": order, "userErrors": []}

    def _orders_connection(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """`orders`: the orders `put_order` made, filtered by `query`, sorted by `sortKey`, paged
        with cursors that name the last row's sort key (so an order changing during a walk
        through the pages moves, but never makes the walk skip another one)."""
        if args.get("last") is not None or args.get("before"):
            raise GraphQLError("the fake Shopify pages orders forwards only (first/after)")
        first = args.get("first")
        if first is None:
            raise GraphQLError("you must provide one of first or last")
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}.")
        wanted = _updated_filter(args.get("query"))
        sort_key = args.get("sortKey") or "PROCESSED_AT"
        epoch = datetime.min.replace(tzinfo=UTC)

        def key(order: FakeOrder) -> tuple[datetime, int]:
            stamp = {
                "UPDATED_AT": order.updated_at,
                "CREATED_AT": order.processed_at,
                "PROCESSED_AT": order.processed_at,
            }.get(sort_key)
            return (stamp or epoch if sort_key != "ID" else epoch, int(order.id))

        reverse = bool(args.get("reverse"))
        keyed = [
            (key(o), o)
            for o in self._orders.values()
            if o.document is not None and o.updated_at is not None and wanted(o.updated_at)
        ]
        if args.get("after"):
            try:
                after = json.loads(base64.b64decode(args["after"], validate=True))
                mark = (datetime.fromisoformat(str(after["k"])), int(after["id"]))
            except (binascii.Error, ValueError, KeyError, TypeError):
                raise GraphQLError("Invalid cursor for current pagination sort.") from None
            keyed = [(k, o) for k, o in keyed if (k < mark if reverse else k > mark)]
        keyed.sort(key=lambda pair: pair[0], reverse=reverse)
        listed = [o for _, o in keyed]
        window = listed[:first]

        def cursor(order: FakeOrder) -> str:
            k = key(order)
            return base64.b64encode(json.dumps({"k": k[0].isoformat(), "id": k[1]}).encode()).decode()

        return {
            "nodes": window,
            "edges": [{"cursor": cursor(o), "node": o} for o in window],
            "pageInfo": {
                "hasNextPage": len(listed) > first,
                "hasPreviousPage": bool(args.get("after")),
                "startCursor": cursor(window[0]) if window else None,
                "endCursor": cursor(window[-1]) if window else None,
            },
        }


# --------------------------------------------------------------------------------------------
# HTTP


def create_fake_shopify_app(fake: FakeShopify) -> Flask:
    """A Flask app serving `fake`; wrap it with `serve_in_thread` or `httpx.WSGITransport`."""
    app = Flask("bridge.fakes.shopify")
    app.extensions["fake_shopify"] = fake

    @app.post("/admin/api/<version>/graphql.json")
    def graphql_endpoint(version: str) -> Response:
        answer = fake.handle(
            api_version=version,
            token=request.headers.get(TOKEN_HEADER),
            body=request.get_data(),
            content_type=request.mimetype,
        )
        if answer.drop:
            mark_drop(request.environ)
        return _json(answer.body, answer.status, answer.headers)

    @app.post("/_fake/orders")
    def seed_order() -> Response:
        data = request.get_json(silent=True) or {}
        try:
            lines = [(str(x["line_id"]), x.get("sku"), int(x["quantity"])) for x in data["lines"]]
            fake.add_order(
                str(data["order_id"]),
                lines,
                name=data.get("name"),
                note=data.get("note"),
                locations=data.get("locations"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            return _json({"error": f"cannot seed the order: {exc}"}, 400)
        return _json({"order_id": str(data["order_id"])}, 201)

    @app.post("/_fake/locations")
    def seed_location() -> Response:
        name = str((request.get_json(silent=True) or {}).get("name") or "")
        if not name:
            return _json({"error": 'send {"name": ...}'}, 400)
        return _json({"id": fake.add_location(name)}, 201)

    @app.post("/_fake/orders/<order_id>/fulfillment_orders/<int:index>/<action>")
    def merchant_request(order_id: str, index: int, action: str) -> Response:
        acts = {
            "request_fulfillment": fake.request_fulfillment,
            "request_cancellation": fake.request_cancellation,
        }
        if action not in acts:
            return _json({"error": f"unknown action; use one of {', '.join(acts)}"}, 404)
        try:
            status = acts[action](order_id, index)
        except (KeyError, IndexError, ValueError) as exc:
            return _json({"error": f"cannot {action}: {exc}"}, 409)
        return _json({"callback_status": status})

    @app.get("/_fake/orders/<order_id>")
    def show_order(order_id: str) -> Response:
        try:
            fulfillments = fake.fulfillments(order_id)
        except KeyError:
            return _json({"error": "no such order"}, 404)
        return _json(
            {
                "order_id": order_id,
                "note": fake.note(order_id),
                "remaining": fake.remaining(order_id),
                "fulfillment_orders": [
                    {"id": fo.id, "status": fo.status, "request_status": fo.request_status}
                    for fo in fake.fulfillment_orders(order_id)
                ],
                "fulfillments": [
                    {
                        "id": f.gid,
                        "name": f.name,
                        "tracking_numbers": list(f.tracking_numbers),
                        "quantities": f.quantities,
                        "notify_customer": f.notify_customer,
                    }
                    for f in fulfillments
                ],
            }
        )

    add_inventory_routes(app, fake)
    app.wsgi_app = ConnectionDropper(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json")


# --------------------------------------------------------------------------------------------
# Inventory: items, levels per location, `inventoryItems` search, `inventorySetQuantities`
#
# Seed with `fake.inventory.add_item(sku, available, ...)`; a sale in the shop is `sell(sku, n)`.
# `inventorySetQuantities` behaves as 2026-07 documents it: `name` `available` or `on_hand`, an
# explicit `changeFromQuantity` on every quantity (null skips the check), compare-and-swap against
# the stored value (`CHANGE_FROM_QUANTITY_STALE`), all or nothing (any user error: nothing is
# applied), and a required `@idempotent(key:)`: a key seen before with the same input answers the
# stored result without applying it again, with other input `IDEMPOTENCY_KEY_PARAMETER_MISMATCH`,
# after a refused attempt `IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED`. Evidence: `stock_log`.

INVENTORY_SDL = """
directive @idempotent(key: String!) on FIELD

extend type QueryRoot {
  inventoryItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
  ): InventoryItemConnection!
}

extend type Mutation {
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
}

type InventoryItemConnection {
  edges: [InventoryItemEdge!]!
  nodes: [InventoryItem!]!
  pageInfo: PageInfo!
}

type InventoryItemEdge {
  cursor: String!
  node: InventoryItem!
}

type InventoryItem {
  id: ID!
  sku: String
  tracked: Boolean!
  inventoryLevel(locationId: ID!, includeInactive: Boolean = false): InventoryLevel
}

type InventoryLevel {
  id: ID!
  item: InventoryItem!
  quantities(names: [String!]!): [InventoryQuantity!]!
}

type InventoryQuantity {
  id: ID!
  name: String!
  quantity: Int!
  updatedAt: DateTime
}

input InventorySetQuantitiesInput {
  reason: String!
  name: String!
  referenceDocumentUri: String
  quantities: [InventoryQuantityInput!]!
}

input InventoryQuantityInput {
  inventoryItemId: ID!
  locationId: ID!
  quantity: Int!
  changeFromQuantity: Int
}

type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [InventorySetQuantitiesUserError!]!
}

type InventoryAdjustmentGroup {
  id: ID!
  reason: String!
  createdAt: DateTime!
  referenceDocumentUri: String
}

type InventorySetQuantitiesUserError {
  code: InventorySetQuantitiesUserErrorCode
  field: [String!]
  message: String!
}

enum InventorySetQuantitiesUserErrorCode {
  INVALID_INVENTORY_ITEM
  INVALID_LOCATION
  INVALID_QUANTITY_NEGATIVE
  INVALID_REASON
  ITEM_NOT_STOCKED_AT_LOCATION
  COMPARE_QUANTITY_REQUIRED
  CHANGE_FROM_QUANTITY_STALE
  INVALID_NAME
  NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR
  IDEMPOTENCY_CONCURRENT_REQUEST
  IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED
}
"""

DEFAULT_LOCATION = "gid://shopify/Location/1"
#: A few of Shopify's documented reasons for a quantity change.
INVENTORY_REASONS = frozenset(
    {"correction", "cycle_count_available", "damaged", "movement_created", "received", "restock", "other"}
)
QUANTITY_NAMES = frozenset({"available", "on_hand"})


@dataclass
class FakeInventoryItem:
    id: int
    sku: str | None
    tracked: bool
    levels: dict[str, dict[str, int]]  # location gid -> quantity name -> units

    @property
    def gid(self) -> str:
        return _gid("InventoryItem", self.id)


@dataclass(frozen=True)
class StockChange:
    """One quantity the fake changed: through `inventorySetQuantities` (`via` "api") or a sale."""

    sku: str | None
    location: str
    before: int
    after: int
    at: datetime
    via: str


class FakeShopifyInventory:
    """The shop's inventory; lives on `FakeShopify.inventory` and uses its lock, ids and clock."""

    def __init__(self, shop: FakeShopify) -> None:
        self._shop = shop
        self.locations: set[str] = {DEFAULT_LOCATION}
        self._items: dict[int, FakeInventoryItem] = {}
        self._by_sku: dict[str, list[int]] = {}
        self._keys: dict[str, tuple[str, dict[str, Any]]] = {}  # idempotency key -> (input digest, answer)
        self.stock_log: list[StockChange] = []

    # -- seeding and inspection ------------------------------------------------------------------

    def add_item(
        self,
        sku: str | None,
        available: int | None = 0,
        *,
        location: str = DEFAULT_LOCATION,
        tracked: bool = True,
    ) -> str:
        """An inventory item (one per variant) with `available` units at `location` (None: not
        stocked there). Returns its gid."""
        with self._shop._lock:
            item = FakeInventoryItem(self._shop._new_id(), sku, tracked, {})
            self.locations.add(location)
            if available is not None:
                item.levels[location] = {"available": available, "on_hand": available}
            self._items[item.id] = item
            if sku:
                self._by_sku.setdefault(sku, []).append(item.id)
            return item.gid

    def available(self, sku: str, location: str = DEFAULT_LOCATION) -> int | None:
        with self._shop._lock:
            for item_id in self._by_sku.get(sku, []):
                level = self._items[item_id].levels.get(location)
                if level is not None:
                    return level["available"]
            return None

    def sell(self, sku: str, units: int = 1, location: str = DEFAULT_LOCATION) -> None:
        """A sale in the shop: Shopify takes the units off `available` at once (it may go negative)."""
        with self._shop._lock:
            item = self._items[self._by_sku[sku][0]]
            level = item.levels[location]
            before = level["available"]
            level["available"] -= units
            self.stock_log.append(
                StockChange(sku, location, before, before - units, self._shop.clock.now(), "sale")
            )

    def set_tracked(self, sku: str, tracked: bool) -> None:
        with self._shop._lock:
            for item_id in self._by_sku.get(sku, []):
                self._items[item_id].tracked = tracked

    def api_changes(self, sku: str | None = None) -> list[StockChange]:
        with self._shop._lock:
            return [c for c in self.stock_log if c.via == "api" and (sku is None or c.sku == sku)]

    # -- resolvers -------------------------------------------------------------------------------

    def item_by_gid(self, value: str) -> FakeInventoryItem | None:
        legacy = _parse_gid(value, "InventoryItem")
        return self._items.get(int(legacy)) if legacy else None

    def search(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """`inventoryItems(query:)` with `sku:` terms joined by OR (a term matches SKUs starting
        with it, as Shopify's search is not an exact match) and `id:` terms."""
        terms = _search_terms(str(args.get("query") or ""))
        found = []
        for item in self._items.values():
            if not terms or any(_matches(item, field, value) for field, value in terms):
                found.append(item)
        return _connection(found, args)

    def level(self, item: FakeInventoryItem, location: str) -> dict[str, Any] | None:
        if _parse_gid(location, "Location") is None:
            return None
        quantities = item.levels.get(location)
        if quantities is None:
            return None
        legacy = location.rsplit("/", 1)[-1]
        return {
            "id": f"gid://shopify/InventoryLevel/{item.id}?inventory_item_id={legacy}",
            "item": item,
            "q": quantities,
        }

    def set_quantities(self, data: Mapping[str, Any], key: str | None) -> dict[str, Any]:
        if not key or not key.strip():
            raise GraphQLError(
                "An idempotency key is required for inventorySetQuantities: add @idempotent(key: ...)",
                extensions={"code": "BAD_REQUEST"},
            )
        digest = json.dumps(data, sort_keys=True, default=str)
        if key in self._keys:
            stored_digest, answer = self._keys[key]
            if stored_digest != digest:
                return _set_answer(None, [_stock_error(None, "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")])
            if answer["userErrors"]:
                return _set_answer(None, [_stock_error(None, "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED")])
            return answer
        answer = self._apply(data)
        self._keys[key] = (digest, answer)
        return answer

    def _apply(self, data: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        name = data["name"]
        if name not in QUANTITY_NAMES:
            errors.append(_stock_error(["input", "name"], "INVALID_NAME"))
        if data["reason"] not in INVENTORY_REASONS:
            errors.append(_stock_error(["input", "reason"], "INVALID_REASON"))
        plan: list[tuple[FakeInventoryItem, str, int]] = []
        seen: set[tuple[str, str]] = set()
        for i, quantity in enumerate(data["quantities"]):
            path = ["input", "quantities", str(i)]
            item = self.item_by_gid(quantity["inventoryItemId"])
            location = quantity["locationId"]
            pair = (quantity["inventoryItemId"], location)
            if pair in seen:
                errors.append(_stock_error(path, "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"))
                continue
            seen.add(pair)
            if item is None:
                errors.append(_stock_error([*path, "inventoryItemId"], "INVALID_INVENTORY_ITEM"))
                continue
            if location not in self.locations:
                errors.append(_stock_error([*path, "locationId"], "INVALID_LOCATION"))
                continue
            levels = item.levels.get(location)
            if levels is None:
                errors.append(_stock_error([*path, "locationId"], "ITEM_NOT_STOCKED_AT_LOCATION"))
                continue
            if quantity["quantity"] < 0:
                errors.append(_stock_error([*path, "quantity"], "INVALID_QUANTITY_NEGATIVE"))
                continue
            if "changeFromQuantity" not in quantity:
                errors.append(_stock_error([*path, "changeFromQuantity"], "COMPARE_QUANTITY_REQUIRED"))
                continue
            expected = quantity["changeFromQuantity"]
            if expected is not None and expected != levels[name if name in levels else "available"]:
                errors.append(_stock_error([*path, "changeFromQuantity"], "CHANGE_FROM_QUANTITY_STALE"))
                continue
            plan.append((item, location, quantity["quantity"]))
        if errors:
            return _set_answer(None, errors)
        now = self._shop.clock.now()
        for item, location, units in plan:
            levels = item.levels[location]
            before = levels["available"]
            delta = units - levels[name]
            levels["available"] += delta
            levels["on_hand"] += delta
            self.stock_log.append(StockChange(item.sku, location, before, levels["available"], now, "api"))
        group = {
            "id": _gid("InventoryAdjustmentGroup", self._shop._new_id()),
            "reason": data["reason"],
            "createdAt": now.isoformat().replace("+00:00", "Z"),
            "referenceDocumentUri": data.get("referenceDocumentUri"),
        }
        return _set_answer(group, [])


_STOCK_MESSAGES = {
    "INVALID_INVENTORY_ITEM": "The specified inventory item could not be found.",
    "INVALID_LOCATION": "The specified location could not be found.",
    "INVALID_QUANTITY_NEGATIVE": "The quantity can't be negative.",
    "INVALID_REASON": "The specified reason is invalid.",
    "ITEM_NOT_STOCKED_AT_LOCATION": "The specified inventory item is not stocked at the location.",
    "COMPARE_QUANTITY_REQUIRED": "The changeFromQuantity argument must be given to each quantity.",
    "CHANGE_FROM_QUANTITY_STALE": "The changeFromQuantity value does not match persisted value.",
    "INVALID_NAME": "The quantity name must be either 'available' or 'on_hand'.",
    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR": (
        "The combination of inventoryItemId and locationId must be unique."
    ),
    "IDEMPOTENCY_KEY_PARAMETER_MISMATCH": (
        "The same idempotency key cannot be used with different operation parameters."
    ),
    "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED": (
        "A previous request with this idempotency key failed. Retry with a new idempotency key."
    ),
}


def _stock_error(path: list[str] | None, code: str) -> dict[str, Any]:
    return {"field": path, "message": _STOCK_MESSAGES[code], "code": code}


def _set_answer(group: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"inventoryAdjustmentGroup": group, "userErrors": errors}


def _search_terms(query: str) -> list[tuple[str, str]]:
    terms = []
    for part in re.split(r"\s+OR\s+", query.strip()) if query.strip() else []:
        field_name, _, value = part.strip().partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((field_name.strip().lower(), value))
    return terms


def _matches(item: FakeInventoryItem, field_name: str, value: str) -> bool:
    if field_name == "sku":
        return bool(item.sku) and item.sku.lower().startswith(value.lower())  # type: ignore[union-attr]
    if field_name == "id":
        return str(item.id) == value
    return False


def _idempotency_key(info: Any) -> str | None:
    for directive in info.field_nodes[0].directives or ():
        if directive.name.value != "idempotent":
            continue
        for argument in directive.arguments or ():
            if argument.name.value == "key":
                value = argument.value
                if isinstance(value, VariableNode):
                    # graphql-core 3.3 wraps the values (`.coerced`); 3.2 passes the dict itself
                    variables = getattr(info.variable_values, "coerced", info.variable_values)
                    found = variables.get(value.name.value)
                    return found if isinstance(found, str) else None
                return getattr(value, "value", None)
    return None


def _inventory_resolvers() -> dict[tuple[str, str], Resolver]:
    def inv(info: Any) -> FakeShopifyInventory:
        fake: FakeShopify = info.context
        return fake.inventory

    return {
        ("QueryRoot", "inventoryItems"): lambda _r, info, **a: inv(info).search(a),
        ("Mutation", "inventorySetQuantities"): lambda _r, info, **a: inv(info).set_quantities(
            a["input"], _idempotency_key(info)
        ),
        ("InventoryItem", "id"): lambda item, _i: item.gid,
        ("InventoryItem", "inventoryLevel"): lambda item, info, **a: inv(info).level(item, a["locationId"]),
        ("InventoryLevel", "id"): lambda level, _i: level["id"],
        ("InventoryLevel", "item"): lambda level, _i: level["item"],
        ("InventoryLevel", "quantities"): lambda level, _i, **a: [
            {"id": f"{level['id']}#{n}", "name": n, "quantity": level["q"][n], "updatedAt": None}
            for n in a["names"]
            if n in level["q"]
        ],
    }


def add_inventory_routes(app: Flask, fake: FakeShopify) -> None:
    """`POST /_fake/inventory` `{"items": [{"sku", "available", "location", "tracked"}]}` seeds
    items; `GET /_fake/inventory/<sku>` shows a SKU's `available` units (for another process)."""

    @app.post("/_fake/inventory")
    def seed_inventory() -> Response:
        data = request.get_json(silent=True) or {}
        try:
            gids = [
                fake.inventory.add_item(
                    x.get("sku"),
                    x.get("available", 0),
                    location=x.get("location", DEFAULT_LOCATION),
                    tracked=bool(x.get("tracked", True)),
                )
                for x in data["items"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            return _json({"error": f"cannot seed the inventory: {exc}"}, 400)
        return _json({"inventory_items": gids}, 201)

    @app.get("/_fake/inventory/<sku>")
    def show_inventory(sku: str) -> Response:
        return _json({"sku": sku, "available": fake.inventory.available(sku)})
