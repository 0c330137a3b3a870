import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LedgerEntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEDGER_ENTRY_KIND_UNSPECIFIED: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_PURCHASE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_PLAN_GRANT: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_HOLD: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_CAPTURE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_RELEASE: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_REFUND_CLAWBACK: _ClassVar[LedgerEntryKind]
    LEDGER_ENTRY_KIND_ADJUSTMENT: _ClassVar[LedgerEntryKind]

class CheckoutKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECKOUT_KIND_UNSPECIFIED: _ClassVar[CheckoutKind]
    CHECKOUT_KIND_PACK: _ClassVar[CheckoutKind]
    CHECKOUT_KIND_PLAN: _ClassVar[CheckoutKind]
LEDGER_ENTRY_KIND_UNSPECIFIED: LedgerEntryKind
LEDGER_ENTRY_KIND_PURCHASE: LedgerEntryKind
LEDGER_ENTRY_KIND_PLAN_GRANT: LedgerEntryKind
LEDGER_ENTRY_KIND_HOLD: LedgerEntryKind
LEDGER_ENTRY_KIND_CAPTURE: LedgerEntryKind
LEDGER_ENTRY_KIND_RELEASE: LedgerEntryKind
LEDGER_ENTRY_KIND_REFUND_CLAWBACK: LedgerEntryKind
LEDGER_ENTRY_KIND_ADJUSTMENT: LedgerEntryKind
CHECKOUT_KIND_UNSPECIFIED: CheckoutKind
CHECKOUT_KIND_PACK: CheckoutKind
CHECKOUT_KIND_PLAN: CheckoutKind

class GetUsageSummaryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetUsageSummaryResponse(_message.Message):
    __slots__ = ("enhancements", "llm_tokens")
    ENHANCEMENTS_FIELD_NUMBER: _ClassVar[int]
    LLM_TOKENS_FIELD_NUMBER: _ClassVar[int]
    enhancements: int
    llm_tokens: int
    def __init__(self, enhancements: _Optional[int] = ..., llm_tokens: _Optional[int] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("balance", "held", "available")
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    balance: int
    held: int
    available: int
    def __init__(self, balance: _Optional[int] = ..., held: _Optional[int] = ..., available: _Optional[int] = ...) -> None: ...

class ListLedgerEntriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("id", "delta_balance", "delta_held", "balance_after", "available_after", "reference", "reason", "created_at", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_BALANCE_FIELD_NUMBER: _ClassVar[int]
    DELTA_HELD_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: int
    delta_balance: int
    delta_held: int
    balance_after: int
    available_after: int
    reference: str
    reason: str
    created_at: _timestamp_pb2.Timestamp
    kind: LedgerEntryKind
    def __init__(self, id: _Optional[int] = ..., delta_balance: _Optional[int] = ..., delta_held: _Optional[int] = ..., balance_after: _Optional[int] = ..., available_after: _Optional[int] = ..., reference: _Optional[str] = ..., reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[LedgerEntryKind, str]] = ...) -> None: ...

class ListLedgerEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_concurrent_trainings", "max_stored_models", "max_concurrent_generations")
    MAX_CONCURRENT_TRAININGS_FIELD_NUMBER: _ClassVar[int]
    MAX_STORED_MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    max_concurrent_trainings: int
    max_stored_models: int
    max_concurrent_generations: int
    def __init__(self, max_concurrent_trainings: _Optional[int] = ..., max_stored_models: _Optional[int] = ..., max_concurrent_generations: _Optional[int] = ...) -> None: ...

class Pack(_message.Message):
    __slots__ = ("id", "name", "credits", "unit_amount", "currency")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    credits: int
    unit_amount: int
    currency: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., credits: _Optional[int] = ..., unit_amount: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("id", "name", "monthly_credits", "unit_amount", "currency", "interval", "limits")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_CREDITS_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    monthly_credits: int
    unit_amount: int
    currency: str
    interval: str
    limits: Limits
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., monthly_credits: _Optional[int] = ..., unit_amount: _Optional[int] = ..., currency: _Optional[str] = ..., interval: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class Prices(_message.Message):
    __slots__ = ("training", "generation_image")
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    GENERATION_IMAGE_FIELD_NUMBER: _ClassVar[int]
    training: int
    generation_image: int
    def __init__(self, training: _Optional[int] = ..., generation_image: _Optional[int] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("packs", "plans", "prices", "free_limits")
    PACKS_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    FREE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    packs: _containers.RepeatedCompositeFieldContainer[Pack]
    plans: _containers.RepeatedCompositeFieldContainer[Plan]
    prices: Prices
    free_limits: Limits
    def __init__(self, packs: _Optional[_Iterable[_Union[Pack, _Mapping]]] = ..., plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ..., prices: _Optional[_Union[Prices, _Mapping]] = ..., free_limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class CreateCheckoutSessionRequest(_message.Message):
    __slots__ = ("kind", "item_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    kind: CheckoutKind
    item_id: str
    def __init__(self, kind: _Optional[_Union[CheckoutKind, str]] = ..., item_id: _Optional[str] = ...) -> None: ...

class CreateCheckoutSessionResponse(_message.Message):
    __slots__ = ("session_id", "url", "expires_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    url: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., url: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreatePortalSessionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreatePortalSessionResponse(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class GetEntitlementsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEntitlementsResponse(_message.Message):
    __slots__ = ("plan_id", "status", "cancel_at_period_end", "current_period_end", "limits")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    status: str
    cancel_at_period_end: bool
    current_period_end: _timestamp_pb2.Timestamp
    limits: Limits
    def __init__(self, plan_id: _Optional[str] = ..., status: _Optional[str] = ..., cancel_at_period_end: _Optional[bool] = ..., current_period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class IngestStripeEventRequest(_message.Message):
    __slots__ = ("payload", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    signature: str
    def __init__(self, payload: _Optional[bytes] = ..., signature: _Optional[str] = ...) -> None: ...

class IngestStripeEventResponse(_message.Message):
    __slots__ = ("event_id", "type", "duplicate")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: str
    duplicate: bool
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class AdjustCreditsRequest(_message.Message):
    __slots__ = ("user_id", "delta", "reason", "actor", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    delta: int
    reason: str
    actor: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., delta: _Optional[int] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class AdjustCreditsResponse(_message.Message):
    __slots__ = ("applied", "balance", "available")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    balance: int
    available: int
    def __init__(self, applied: _Optional[bool] = ..., balance: _Optional[int] = ..., available: _Optional[int] = ...) -> None: ...

class GetUserCreditsRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetUserCreditsResponse(_message.Message):
    __slots__ = ("balance", "held", "available", "entries", "next_page_token")
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    balance: int
    held: int
    available: int
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    next_page_token: str
    def __init__(self, balance: _Optional[int] = ..., held: _Optional[int] = ..., available: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
