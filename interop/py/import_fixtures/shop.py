"""A contract written on the released clamator-protocol 0.1.9 (Pydantic v2), as a Python team
would: the fixture of `clamator codegen import --python` (issue 14). It exercises nested
models, optional fields, enums, literals, lists, dicts, a discriminated union, constrained
numbers and strings, aliases and a notification."""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from clamator_protocol import Contract, MethodEntry


class Size(str, Enum):
    small = "small"
    large = "large"


class Address(BaseModel):
    """Where an order goes."""

    street: str = Field(min_length=1, max_length=80)
    city: str
    postcode: str | None = Field(default=None, pattern=r"^[0-9]{5}$")


class Pickup(BaseModel):
    kind: Literal["pickup"]
    store: str


class Delivery(BaseModel):
    kind: Literal["delivery"]
    address: Address


class Line(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sku: str
    quantity: int = Field(ge=1, le=100)
    unit_price: float = Field(alias="unitPrice", ge=0)
    size: Size = Size.small


class PlaceOrder(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    customer_id: str = Field(alias="customerId")
    lines: list[Line] = Field(min_length=1)
    shipping: Annotated[Union[Pickup, Delivery], Field(discriminator="kind")]
    tags: dict[str, str] = Field(default_factory=dict)
    note: str | None = None


class Placed(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    order_id: str = Field(alias="orderId")
    total: float
    status: Literal["accepted", "queued"]


class Cancelled(BaseModel):
    order_id: str = Field(alias="orderId")
    reason: str | None = None


class Nothing(BaseModel):
    pass


shop_contract = Contract(
    service="shop",
    methods={
        "placeOrder": MethodEntry(params_model=PlaceOrder, result_model=Placed, handler_attr="place_order"),
        "count": MethodEntry(params_model=Nothing, result_model=Placed, handler_attr="count"),
        "cancelled": MethodEntry(params_model=Cancelled, result_model=None, handler_attr="cancelled"),
    },
)
