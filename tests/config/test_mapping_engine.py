"""The compiled mapping: native <-> canonical conversion, EntitySpec, record errors, and the
shipped HubSpot and Odoo mapping files."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from sync.mapping import EntityMapping, RecordError, load_default_mapping, load_mapping
from sync.model import OrderStatus
from tests.config.conftest import WriteYaml

CUSTOMER = """\
connector: fakecrm
entities:
  customer:
    object: companies
    id: hs_object_id
    updated_at: hs_lastmodifieddate
    key_field: concord_erp_id
    options: {archived: false}
    custom_fields:
      concord_erp_id: {type: string, unique: true}
    fields:
      name: {path: name, transform: [strip]}
      email: {path: company_email, transform: [strip, lower]}
      phone: {path: phone, transform: [{e164: DE}]}
      country: {path: country, transform: [{country: {out: name}}]}
      credit_limit: {path: erp_credit_limit, transform: [{decimal: {scale: 2}}]}
      balance_due: {path: erp_balance_due, transform: [decimal], out_only: true}
      customer_code: {path: hs_object_id, in_only: true}
      deleted: {path: active, transform: [not]}
      tags: {path: tags, transform: [split]}
      currency: {path: currency, default: EUR}
      extra.industry: {path: industry, transform: [upper]}
      extra.segment: {path: segment, map: {"1": small, "2": large}, map_default: unknown, in_only: true}
"""


@pytest.fixture
def customer(write_yaml: WriteYaml) -> EntityMapping:
    return load_mapping(write_yaml(CUSTOMER, name="m.yaml")).entity("customer")


def test_spec_lists_every_native_field_once(customer: EntityMapping) -> None:
    spec = customer.spec
    assert (spec.entity, spec.object, spec.id_field, spec.updated_field, spec.key_field) == (
        "customer", "companies", "hs_object_id", "hs_lastmodifieddate", "concord_erp_id")
    assert spec.fields == ("hs_object_id", "hs_lastmodifieddate", "concord_erp_id", "name", "company_email",
                           "phone", "country", "erp_credit_limit", "erp_balance_due", "active", "tags",
                           "currency", "industry", "segment")
    assert spec.options["archived"] is False
    assert spec.options["custom_fields"] == {"concord_erp_id": {"type": "string", "unique": True}}
    assert customer.custom_fields == {"concord_erp_id": {"type": "string", "unique": True}}


def test_inbound_and_outbound_fields(customer: EntityMapping) -> None:
    both = {"name", "email", "phone", "country", "credit_limit", "deleted", "tags", "currency", "extra.industry"}
    assert customer.inbound_fields() == both | {"customer_code", "extra.segment"}
    assert customer.outbound_fields() == both | {"balance_due"}


def test_to_canonical_converts_and_validates(customer: EntityMapping) -> None:
    native = {"hs_object_id": "42", "name": "  Acme GmbH ", "company_email": " Sales@ACME.example ",
              "phone": "030 1234567", "country": "Germany", "erp_credit_limit": "1000.005",
              "erp_balance_due": "5", "active": "true", "tags": "a;b", "industry": "retail", "segment": "2"}
    assert customer.to_canonical(native) == {
        "name": "Acme GmbH", "email": "sales@acme.example", "phone": "+49301234567", "country": "DE",
        "credit_limit": Decimal("1000.01"), "customer_code": "42", "deleted": False, "tags": ["a", "b"],
        "currency": "EUR", "extra": {"industry": "RETAIL", "segment": "large"},
    }


def test_empty_native_values_become_none(customer: EntityMapping) -> None:
    # HubSpot omits empty properties or sends ""; Odoo sends false for any empty field.
    canonical = customer.to_canonical({"name": "", "company_email": False, "phone": None, "active": False,
                                       "segment": "9"})
    assert canonical["name"] is None and canonical["email"] is None and canonical["phone"] is None
    assert canonical["country"] is None and canonical["credit_limit"] is None
    assert canonical["deleted"] is True  # False is a value for a boolean target
    assert canonical["currency"] == "EUR"  # default
    assert canonical["extra"] == {"industry": None, "segment": "unknown"}  # map_default


def test_to_native_reverses_the_chain(customer: EntityMapping) -> None:
    canonical = {"name": "Acme", "email": "a@b.example", "phone": "+49301234567", "country": "DE",
                 "credit_limit": Decimal(10), "balance_due": Decimal("2.5"), "customer_code": "C1",
                 "deleted": False, "tags": ["x", "y"], "currency": None,
                 "extra": {"industry": "RETAIL", "segment": "large"}}
    assert customer.to_native(canonical) == {
        "name": "Acme", "company_email": "a@b.example", "phone": "+49301234567", "country": "Germany",
        "erp_credit_limit": Decimal("10.00"), "erp_balance_due": Decimal("2.5"), "active": True,
        "tags": "x;y", "currency": "EUR", "industry": "RETAIL",
    }


def test_to_native_skips_absent_fields_and_restricts_to_changed(customer: EntityMapping) -> None:
    assert customer.to_native({"name": "Acme"}) == {"name": "Acme"}
    assert customer.to_native({"name": None}) == {"name": None}  # None clears, absent leaves alone
    canonical = {"name": "Acme", "email": "a@b.example", "extra": {"industry": "x"}}
    assert customer.to_native(canonical, fields=["email"]) == {"company_email": "a@b.example"}
    assert customer.to_native(canonical, fields=["extra.industry"]) == {"industry": "X"}
    assert customer.to_native(canonical, fields=[]) == {}


def test_round_trip_native_canonical_native(customer: EntityMapping) -> None:
    native = {"name": "Acme", "company_email": "a@b.example", "phone": "+49301234567", "country": "Germany",
              "erp_credit_limit": "10.00", "active": "true", "tags": "a;b", "currency": "USD",
              "industry": "RETAIL"}
    back = customer.to_native(customer.to_canonical(native))
    assert back["country"] == "Germany" and back["phone"] == "+49301234567" and back["tags"] == "a;b"
    assert customer.to_canonical(back | {"active": "true" if back["active"] else "false"}) == \
        customer.to_canonical(native)


@pytest.mark.parametrize(("native", "field", "path", "fragment"), [
    ({"erp_credit_limit": "a lot"}, "credit_limit", "erp_credit_limit", "expected a number"),
    ({"country": "Narnia"}, "country", "country", "unknown country 'Narnia'"),
    ({"active": "maybe"}, "deleted", "active", "expected true or false"),
])
def test_record_errors_name_field_path_and_value(customer: EntityMapping, native: dict, field: str,
                                                 path: str, fragment: str) -> None:
    with pytest.raises(RecordError) as info:
        customer.to_canonical(native)
    err = info.value
    assert (err.field, err.path) == (field, path)
    assert fragment in err.message
    assert repr(native[path])[:20] in err.value


def test_canonical_validation_failure_is_a_record_error(write_yaml: WriteYaml) -> None:
    text = CUSTOMER.replace("transform: [{country: {out: name}}]", "transform: [upper]")
    customer = load_mapping(write_yaml(text, name="m.yaml")).entity("customer")
    with pytest.raises(RecordError) as info:
        customer.to_canonical({"country": "deu"})
    assert (info.value.field, info.value.path) == ("country", "country")
    assert "alpha-2" in info.value.message
    assert "'DEU'" in str(info.value) or "'deu'" in str(info.value)


def test_integer_ids_read_into_text_fields(write_yaml: WriteYaml) -> None:
    text = CUSTOMER.replace("customer_code: {path: hs_object_id, in_only: true}",
                            "customer_code: {path: id, in_only: true}")
    customer = load_mapping(write_yaml(text, name="m.yaml")).entity("customer")
    assert customer.to_canonical({"id": 7})["customer_code"] == "7"


def test_outbound_record_error(customer: EntityMapping) -> None:
    with pytest.raises(RecordError) as info:
        customer.to_native({"country": "Atlantis"})
    assert (info.value.field, info.value.path) == ("country", "country")


ORDER = """\
connector: fakecrm
entities:
  order:
    object: deals
    id: hs_object_id
    updated_at: hs_lastmodifieddate
    fields:
      order_ref: {path: hs_object_id, in_only: true}
      order_date: {path: closedate, transform: [date]}
      amount_total: {path: amount, transform: [decimal]}
      status:
        path: dealstage
        map: {appointmentscheduled: draft, closedwon: confirmed, closedlost: cancelled}
      lines:
        path: line_items
        items:
          line_ref: {path: hs_object_id, in_only: true}
          sku: {path: hs_sku}
          quantity: {path: quantity, transform: [decimal]}
          unit_price: {path: price, transform: [decimal]}
"""


def test_value_table_both_directions_and_list_items(write_yaml: WriteYaml) -> None:
    order = load_mapping(write_yaml(ORDER, name="o.yaml")).entity("order")
    native = {"hs_object_id": "7", "closedate": "1704067200000", "amount": "12.50", "dealstage": "closedwon",
              "line_items": [{"hs_object_id": "1", "hs_sku": "SKU-1", "quantity": "2", "price": "6.25"}]}
    canonical = order.to_canonical(native)
    assert canonical == {
        "order_ref": "7", "order_date": date(2024, 1, 1), "amount_total": Decimal("12.50"),
        "status": OrderStatus.confirmed,
        "lines": [{"line_ref": "1", "sku": "SKU-1", "quantity": Decimal(2), "unit_price": Decimal("6.25"),
                   "discount": None}],
    }
    out = order.to_native(canonical)
    assert out["dealstage"] == "closedwon"
    assert out["line_items"] == [{"hs_sku": "SKU-1", "quantity": Decimal(2), "price": Decimal("6.25")}]
    assert order.to_native({"status": "cancelled"}) == {"dealstage": "closedlost"}
    assert order.spec.options["item_fields"] == {"line_items": ("hs_object_id", "hs_sku", "quantity", "price")}


def test_unknown_native_value_in_a_table(write_yaml: WriteYaml) -> None:
    order = load_mapping(write_yaml(ORDER, name="o.yaml")).entity("order")
    with pytest.raises(RecordError) as info:
        order.to_canonical({"dealstage": "contractsent"})
    assert (info.value.field, info.value.path) == ("status", "dealstage")
    assert "not in the field's map" in info.value.message
    with pytest.raises(RecordError, match="no native value"):
        order.to_native({"status": "shipped"})


def test_bad_item_is_reported_with_its_field(write_yaml: WriteYaml) -> None:
    order = load_mapping(write_yaml(ORDER, name="o.yaml")).entity("order")
    with pytest.raises(RecordError) as info:
        order.to_canonical({"line_items": [{"hs_sku": "A", "quantity": "two"}]})
    assert (info.value.field, info.value.path) == ("lines.quantity", "line_items.quantity")


# --------------------------------------------------------------------------------------------
# The shipped mapping files
# --------------------------------------------------------------------------------------------
def test_shipped_mappings_load() -> None:
    hubspot = load_default_mapping("hubspot")
    odoo = load_default_mapping("odoo")
    assert (hubspot.system, odoo.system) == ("hubspot", "odoo")
    assert {"customer", "product"} <= set(hubspot.entities) & set(odoo.entities)
    assert hubspot.entity("customer").spec.key_field == "concord_erp_id"
    assert hubspot.entity("customer").custom_fields["concord_erp_id"]["unique"] is True
    spec = odoo.entity("customer").spec
    assert (spec.object, spec.key_field) == ("res.partner", "x_concord_crm_id")
    assert spec.options["domain"] == [["is_company", "=", True], ["customer_rank", ">", 0]]
    assert spec.options["create_defaults"] == {"is_company": True, "customer_rank": 1}
    assert spec.options["xmlid_prefix"] == "hubspot_company_"
    assert spec.options["custom_fields"]["x_concord_crm_id"] == {"type": "char", "index": True,
                                                                 "label": "Concord CRM id"}
    assert {"state_id.name", "country_id.code", "credit"} <= set(spec.fields)


def test_shipped_mappings_carry_a_hubspot_company_to_odoo_and_back() -> None:
    hubspot = load_default_mapping("hubspot").entity("customer")
    odoo = load_default_mapping("odoo").entity("customer")
    company = {"hs_object_id": "501", "hs_lastmodifieddate": "2024-05-01T10:00:00Z", "name": " Acme Inc ",
               "website": "https://acme.example", "phone": "(415) 555-0100", "address": "1 Main St",
               "city": "San Francisco", "zip": "94105", "state": "CA", "country": "United States",
               "company_email": "Billing@Acme.example", "vat_number": "US123"}
    canonical = hubspot.to_canonical(company)
    assert canonical["country"] == "US" and canonical["phone"] == "+14155550100"
    assert canonical["email"] == "billing@acme.example"
    assert "credit_limit" not in canonical  # ERP-owned: written to HubSpot, never read from it
    partner = odoo.to_native(canonical)
    assert partner == {"name": "Acme Inc", "email": "billing@acme.example", "phone": "+14155550100",
                       "website": "https://acme.example", "vat": "US123", "street": "1 Main St",
                       "city": "San Francisco", "zip": "94105", "country_id.code": "US"}
    # Odoo's answer (false for empty, floats, many2one sub-fields resolved by the connector)
    read_back = {"id": 9, "write_date": "2024-05-01 10:00:05", **partner, "ref": False,
                 "state_id.name": "California", "credit_limit": 5000.0, "credit": 125.5}
    from_odoo = odoo.to_canonical(read_back)
    assert from_odoo["credit_limit"] == Decimal("5000.0") and from_odoo["balance_due"] == Decimal("125.5")
    assert from_odoo["customer_code"] is None
    company_update = hubspot.to_native(from_odoo)
    assert company_update["country"] == "United States"
    assert company_update["erp_credit_limit"] == Decimal("5000.0")
    assert company_update["erp_balance_due"] == Decimal("125.5")
    assert company_update["state"] == "California"
    # both sides agree on the fields they share
    again = hubspot.to_canonical({**company, **{k: v for k, v in company_update.items() if v is not None}})
    shared = hubspot.inbound_fields() & odoo.inbound_fields()
    assert {f: again[f] for f in shared} == {f: from_odoo[f] for f in shared}


def test_mapping_files_are_package_data() -> None:
    import mappings

    folder = Path(mappings.__file__).parent
    assert (folder / "hubspot.yaml").is_file() and (folder / "odoo.yaml").is_file()
