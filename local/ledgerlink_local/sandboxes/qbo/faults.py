"""QuickBooks Online error bodies, as the Accounting API answers them.

Two shapes exist (../shared/api-notes.md §2 "Errors"; checked against bodies quoted in public issue
threads of python-quickbooks, node-quickbooks and the Intuit SDKs):

- the data service's ``Fault`` (HTTP 400, sometimes 200/500):
  ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type": "ValidationFault"}, "time": ...}``;
- the API gateway's lower-case serialisation for 401/403 (authentication, authorization), e.g.
  ``{"warnings": null, "intuitObject": null, "fault": {"error": [{"message":
  "message=AuthenticationFailed; errorCode=003200; statusCode=401", "detail": ..., "code": "3200",
  "element": null}], "type": "AUTHENTICATION"}, ..., "time": <epoch ms>, ...}``.

Unverified (no primary source found; kept plausible and in Intuit's style): the exact ``Detail`` text of
codes 610, 6000, 6070, 6140 and 6240, the code used for a CDC window that is too old (500) and for a
batch over its item limit (6000), and the ``detail`` text of expired/revoked tokens.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]

OBJECT_NOT_FOUND_DETAIL = (
    "Object Not Found : Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)


class QboFault(Exception):
    """One QBO error; the HTTP layer turns it into a ``Fault`` body (or a batch item's ``Fault``)."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str,
        *,
        element: str = "",
        status: int = 400,
        fault_type: str = "ValidationFault",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.status = status
        self.fault_type = fault_type

    def error(self) -> JsonObject:
        error: JsonObject = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element:
            error["element"] = self.element
        return error

    def fault(self) -> JsonObject:
        return {"Error": [self.error()], "type": self.fault_type}


def fault_body(fault: QboFault, time: str) -> JsonObject:
    return {"Fault": fault.fault(), "time": time}


def object_not_found(element: str = "") -> QboFault:
    return QboFault("610", "Object Not Found", OBJECT_NOT_FOUND_DETAIL, element=element)


def required_missing(name: str) -> QboFault:
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {name} is missing in the request",
        element=name,
    )


def unrecognized_field(name: str, entity: str) -> QboFault:
    return QboFault(
        "2010",
        "Request has invalid or unsupported property",
        f'Property Name:Unrecognized field "{name}" (class com.intuit.schema.finance.v3.{entity}), '
        "not marked as ignorable",
        element=name,
    )


def invalid_value(name: str, reason: str) -> QboFault:
    return QboFault(
        "2010",
        "Request has invalid or unsupported property",
        f"Property Name:{name} specified is unsupported or invalid: {reason}",
        element=name,
    )


def string_length(name: str, maximum: int, supplied: int) -> QboFault:
    return QboFault(
        "2050",
        "String length specified does not match the supported length",
        f"String length is either shorter or longer than supported by specification. "
        f"Min:0 Max:{maximum} supported. Supplied length:{supplied}",
        element=name,
    )


def business_error(detail: str, element: str = "") -> QboFault:
    return QboFault(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
        element=element,
    )


def unsupported_operation(detail: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", detail)


def stale_object(user: str) -> QboFault:
    return QboFault(
        "5010",
        "Stale Object Error",
        f"Stale Object Error : You and {user} were working on this at the same time. "
        f"{user} finished before you did, so your work was not saved.",
    )


def duplicate_name(what: str) -> QboFault:
    return QboFault(
        "6240",
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another {what} is already using this name. "
        "Please use a different name.",
    )


def duplicate_document_number(doc_number: str, txn_type: str, txn_id: str) -> QboFault:
    return QboFault(
        "6140",
        "Duplicate Document Number Error",
        "Duplicate Document Number Error : You must specify a different number. This number has "
        f"already been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with TxnId={txn_id}",
    )


def amount_mismatch(amount: str) -> QboFault:
    return QboFault(
        "6070",
        "Amount is not equal to UnitPrice * Qty",
        f"Business Validation Error: Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
        element="Line.Amount",
    )


def query_parse_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def query_validation_error(detail: str) -> QboFault:
    return QboFault("4001", "Invalid query", f"QueryValidationError: {detail}")


def system_error(detail: str = "An unexpected error occurred") -> QboFault:
    return QboFault(
        "10000",
        "An application error has occurred while processing your request",
        f"System Failure Error: {detail}",
        status=500,
        fault_type="SystemFault",
    )


def throttled() -> QboFault:
    return QboFault(
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.  Try again later",
        status=429,
        fault_type="SERVICE",
    )


def gateway_body(message: str, code: str, detail: str | None, fault_type: str, epoch_ms: int) -> JsonObject:
    """The API gateway's 401/403 body (lower-case keys, as Intuit serialises it there)."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [{"message": message, "detail": detail, "code": code, "element": None}],
            "type": fault_type,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": epoch_ms,
        "status": None,
        "cdcresponse": [],
    }


def authentication_failed(detail: str, epoch_ms: int) -> JsonObject:
    return gateway_body(
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "3200",
        detail,
        "AUTHENTICATION",
        epoch_ms,
    )


def authorization_failed(epoch_ms: int) -> JsonObject:
    return gateway_body(
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        "3100",
        None,
        "SERVICE",
        epoch_ms,
    )
