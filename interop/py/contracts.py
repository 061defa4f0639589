"""The interop contracts (spec §6.1) for the released Python clamator 0.1.9, written as the
0.1.9 codegen would emit them (Pydantic v2 models with extra="forbid")."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from clamator_protocol import Contract, MethodEntry


class AddParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: float
    b: float


class AddResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sum: float


class DivideResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: float


class EchoTextParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class EchoTextResult(EchoTextParams):
    pass


class SlowAddParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: float
    b: float
    sleep_ms: int = Field(..., alias="sleepMs", ge=0)


class PingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str | None = None


arith_contract = Contract(
    service="arith",
    methods={
        "add": MethodEntry(params_model=AddParams, result_model=AddResult, handler_attr="add"),
        "divide": MethodEntry(params_model=AddParams, result_model=DivideResult, handler_attr="divide"),
        "echoText": MethodEntry(params_model=EchoTextParams, result_model=EchoTextResult, handler_attr="echo_text"),
        "slowAdd": MethodEntry(params_model=SlowAddParams, result_model=AddResult, handler_attr="slow_add"),
    },
)

notifications_contract = Contract(
    service="notifications",
    methods={"ping": MethodEntry(params_model=PingParams, result_model=None, handler_attr="ping")},
)
