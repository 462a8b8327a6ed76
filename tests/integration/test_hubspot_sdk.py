"""HubSpot's official Python SDK (hubspot-api-client) against the HubSpot sandbox: the same calls
LedgerLink's deal sync makes, pointed at the sandbox through the SDK's ``host`` option."""

from __future__ import annotations

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    PublicAssociationMultiPost,
)
from hubspot.crm.associations.v4 import PublicObjectId as AssociationObjectId
from hubspot.crm.deals import AssociationSpec as InlineAssociationSpec
from hubspot.crm.deals import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    PublicAssociationsForObject,
    PublicObjectId,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.deals.exceptions import ApiException
from hubspot.crm.properties import PropertyCreate

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, INVOICE_STAGE_IDS, INVOICES_PIPELINE_ID
from tests.unit.sandboxes.test_hubspot_support import payload


@pytest.fixture
def client(hubspot_sandbox: SandboxServer) -> HubSpot:
    return HubSpot(access_token=DEMO_ACCESS_TOKEN, host=hubspot_sandbox.url)


def _invoice(number: str, amount: str, stage: str = "open") -> SimplePublicObjectBatchInputUpsert:
    return SimplePublicObjectBatchInputUpsert(
        id=number,
        id_property="qbo_invoice_id",
        properties={
            "dealname": f"Invoice {number}",
            "amount": amount,
            "pipeline": INVOICES_PIPELINE_ID,
            "dealstage": INVOICE_STAGE_IDS[stage],
        },
    )


def test_sdk_creates_upserts_reads_and_associates_deals(
    client: HubSpot, hubspot_sandbox: SandboxServer
) -> None:
    # given the unique invoice-id property, created through the SDK from LedgerLink's definition
    definition = payload("invoice_id_property.json")
    created_property = client.crm.properties.core_api.create(
        object_type="deals",
        property_create=PropertyCreate(
            name=definition["name"],
            label=definition["label"],
            type=definition["type"],
            field_type=definition["fieldType"],
            group_name=definition["groupName"],
            has_unique_value=True,
        ),
    )
    assert created_property.has_unique_value is True

    # when a deal is created with an inline association to a demo company
    deal = client.crm.deals.basic_api.create(
        simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
            properties={"dealname": "Invoice 1037", "amount": "362.07", "qbo_invoice_id": "1037",
                        "pipeline": INVOICES_PIPELINE_ID, "dealstage": INVOICE_STAGE_IDS["open"]},
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id="21001"),
                    types=[InlineAssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=341)],
                )
            ],
        )
    )  # fmt: skip
    # and invoices are upserted by the unique property: 1037 again (paid now) and a new 1038
    upserted = client.crm.deals.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[_invoice("1037", "362.07", "paid"), _invoice("1038", "99.95")]
        )
    )
    # then the first upsert updated the existing deal and the second created one
    assert upserted.status == "COMPLETE"
    assert [(r.id == deal.id, r.new) for r in upserted.results] == [(True, False), (False, True)]

    # when the deals are read back by invoice id, with their company associations
    read = client.crm.deals.basic_api.get_by_id(
        deal_id="1037",
        id_property="qbo_invoice_id",
        properties=["amount", "dealstage"],
        associations=["companies"],
    )
    # then the SDK sees the update and the association
    assert read.id == deal.id
    assert read.properties["dealstage"] == INVOICE_STAGE_IDS["paid"]
    assert [a.id for a in read.associations["companies"].results] == ["21001"]

    # when the new deal is associated through the v4 API: default company, typed contact, batch line-up
    new_deal = next(r.id for r in upserted.results if r.new)
    default = client.crm.associations.v4.basic_api.create_default(
        from_object_type="deals", from_object_id=new_deal, to_object_type="companies", to_object_id="21002"
    )
    typed = client.crm.associations.v4.basic_api.create(
        object_type="deals",
        object_id=new_deal,
        to_object_type="contacts",
        to_object_id="51002",
        association_spec=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=3)],
    )
    batch = client.crm.associations.v4.batch_api.create(
        from_object_type="deals",
        to_object_type="companies",
        batch_input_public_association_multi_post=BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=AssociationObjectId(id=new_deal),
                    to=AssociationObjectId(id="21002"),
                    types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=5)],
                )
            ]
        ),
    )
    page = client.crm.associations.v4.basic_api.get_page(
        object_type="deals", object_id=new_deal, to_object_type="companies"
    )
    # then the associations exist as HubSpot reports them
    assert default.results[0].association_spec.association_type_id == 341
    assert typed.to_object_id == "51002" and typed.from_object_type_id == "0-3"
    assert batch.results[0].labels == ["Primary"]
    assert [(r.to_object_id, sorted(t.type_id for t in r.association_types)) for r in page.results] == [
        ("21002", [5, 341])
    ]
    # and the sandbox saw the SDK's requests on HubSpot's paths
    paths = {entry["path"] for entry in _request_log(hubspot_sandbox)}
    assert "/crm/v3/objects/deals/batch/upsert" in paths and "/crm/v3/objects/deals/1037" in paths


def test_sdk_surfaces_hubspot_errors(client: HubSpot) -> None:
    # when the SDK creates a deal with an unknown property
    with pytest.raises(ApiException) as raised:
        client.crm.deals.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(
                properties={"dealname": "Bad", "no_such_property": "x"}, associations=[]
            )
        )
    # then it raises HubSpot's 400 with the validation body
    assert raised.value.status == 400
    assert "PROPERTY_DOESNT_EXIST" in raised.value.body


def _request_log(server: SandboxServer) -> list[dict[str, object]]:
    log: list[dict[str, object]] = requests.get(f"{server.url}/_admin/requests", timeout=10).json()[
        "requests"
    ]
    return log
