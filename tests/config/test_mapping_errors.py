"""Mapping files: each kind of mistake is a load-time error with file:line and YAML path, and
all of them are reported at once."""
from __future__ import annotations

import pytest

from sync.mapping import MappingError, load_mapping
from tests.config.conftest import WriteYaml

HEAD = """\
connector: fakecrm
entities:
  customer:
    object: companies
    id: hs_object_id
    updated_at: hs_lastmodifieddate
    fields:
      name: {path: name}
"""  # 8 lines: each case's first line is line 9


# (case id, YAML after HEAD, line, dotted path, fragments the message must contain)
CASES = [
    ("unknown canonical field", "      nmae: {path: name2}\n",
     9, "entities.customer.fields.nmae", ["unknown canonical field 'nmae'", "email", "extra.<name>"]),
    ("unknown transform", "      email: {path: email, transform: [strip, lowercase]}\n",
     9, "entities.customer.fields.email.transform[1]", ["unknown transform 'lowercase'", "known:", "lower",
                                                        "e164"]),
    ("unknown transform as a single name", "      email: {path: email, transform: trim}\n",
     9, "entities.customer.fields.email.transform", ["unknown transform 'trim'"]),
    ("bad transform argument name", ("      phone:\n        path: phone\n        transform:\n"
                                     "          - e164: {country: US}\n"),
     12, "entities.customer.fields.phone.transform[0].e164", ["unknown argument 'country'", "region"]),
    ("bad transform argument value", "      phone: {path: phone, transform: [{e164: {region: XX}}]}\n",
     9, "entities.customer.fields.phone.transform[0].e164", ["bad value for 'region'"]),
    ("bad decimal scale", "      credit_limit: {path: cl, transform: [{decimal: {scale: -1}}]}\n",
     9, "entities.customer.fields.credit_limit.transform[0].decimal", ["bad value for 'scale'"]),
    ("argument to a transform that takes none", "      email: {path: e, transform: [{lower: yes}]}\n",
     9, "entities.customer.fields.email.transform[0].lower", ["lower takes no arguments"]),
    ("default without value", "      city: {path: city, transform: [{default: {}}]}\n",
     9, "entities.customer.fields.city.transform[0].default", ["missing argument 'value'"]),
    ("unknown key in field", "      email: {path: email, transfrom: [lower]}\n",
     9, "entities.customer.fields.email.transfrom", ["unknown key 'transfrom'", "(did you mean 'transform'?)"]),
    ("field without path", "      email: {transform: [lower]}\n",
     9, "entities.customer.fields.email.path", ["missing required key 'path'"]),
    ("wrong type", "      email: {path: email, in_only: sometimes}\n",
     9, "entities.customer.fields.email.in_only", ["expected true or false", "found 'sometimes'"]),
    ("in_only and out_only", "      email: {path: email, in_only: true, out_only: true}\n",
     9, "entities.customer.fields.email.out_only", ["cannot be both in_only and out_only"]),
    ("map that cannot be inverted", "      city:\n        path: c\n        map: {a: X, b: Y, c: X}\n",
     11, "entities.customer.fields.city.map", ["cannot be written back", "'X' comes from both 'a' and 'c'",
                                               "in_only"]),
    ("map with list values written back", "      tags:\n        path: t\n        map: {a: [x]}\n",
     11, "entities.customer.fields.tags.map", ["cannot be written back", "in_only"]),
    ("map value not valid for the field", "      country: {path: c, map: {Deutschland: Germany}}\n",
     9, "entities.customer.fields.country.map", ["'Germany' is not a valid country", "alpha-2"]),
    ("map_default without map", "      city: {path: city, map_default: x}\n",
     9, "entities.customer.fields.city.map_default", ["map_default needs a `map`"]),
    ("writing the native id", "      customer_code: {path: hs_object_id}\n",
     9, "entities.customer.fields.customer_code.path", ["cannot be written", "in_only: true"]),
    ("two fields write one native field", "      vat: {path: name}\n",
     9, "entities.customer.fields.vat.path", ["already written by 'name'"]),
    ("items on a scalar field", "      email: {path: e, items: {sku: {path: s}}}\n",
     9, "entities.customer.fields.email.items", ["not a list of records"]),
    ("custom field without type", "    custom_fields:\n      concord_id: {label: x}\n",
     10, "entities.customer.custom_fields.concord_id", ["expected a `type`"]),
    ("unknown entity key", "    key_fields: x\n",
     9, "entities.customer.key_fields", ["unknown key 'key_fields'", "(did you mean 'key_field'?)"]),
    ("unknown entity", "  customers:\n    object: c\n    id: id\n    updated_at: u\n    fields: {name: n}\n",
     9, "entities.customers", ["unknown entity 'customers'", "customer, product, order, stock_level, payment"]),
    ("missing required entity key", ("  product:\n    object: products\n    updated_at: u\n"
                                     "    fields: {sku: hs_sku}\n"),
     9, "entities.product.id", ["missing required key 'id'"]),
    ("entity key not mapped", ("  product:\n    object: products\n    id: i\n    updated_at: u\n"
                               "    fields: {name: name}\n"),
     13, "entities.product.fields", ["the product key 'sku' must be mapped"]),
    ("entity key out_only", ("  payment:\n    object: invoices\n    id: i\n    updated_at: u\n"
                             "    fields: {invoice_number: {path: n, out_only: true}}\n"),
     13, "entities.payment.fields", ["the payment key 'invoice_number' must be mapped"]),
    ("bad YAML", "      email: {path: email\n",
     10, "(top level)", ["invalid YAML"]),
]


@pytest.mark.parametrize(("tail", "line", "path", "fragments"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_each_mapping_mistake_names_line_and_path(write_yaml: WriteYaml, tail: str, line: int, path: str,
                                                  fragments: list[str]) -> None:
    file = write_yaml(HEAD + tail, name="crm.yaml")
    with pytest.raises(MappingError) as info:
        load_mapping(file)
    errors = info.value.errors
    assert len(errors) == 1, errors
    text = str(errors[0])
    assert errors[0].line == line, text
    assert f": {path}: " in text, text
    assert text.startswith(str(file)), text
    for fragment in fragments:
        assert fragment in errors[0].message, text


def test_missing_top_level_keys(write_yaml: WriteYaml) -> None:
    with pytest.raises(MappingError) as info:
        load_mapping(write_yaml("description: nothing here\n", name="m.yaml"))
    assert sorted(e.path for e in info.value.errors) == [("connector",), ("entities",)]


def test_all_mistakes_reported_at_once(write_yaml: WriteYaml) -> None:
    file = write_yaml("""\
        connector: fakecrm
        entities:
          customer:
            object: companies
            id: hs_object_id
            fields:
              name: {path: name, transform: [strip, titlecase]}
              emial: {path: email}
              phone: {path: phone, transform: [{e164: {region: ZZ}}]}
              status: {path: s}
          widget: {}
          product:
            object: products
            id: hs_object_id
            updated_at: hs_lastmodifieddate
            fields:
              sku: {path: hs_sku, transform: [decimal, {country: {out: flag}}]}
        """, name="m.yaml")
    with pytest.raises(MappingError) as info:
        load_mapping(file)
    summary = [(e.line, ".".join(map(str, e.path))) for e in info.value.errors]
    assert summary == [
        (3, "entities.customer.updated_at"),
        (7, "entities.customer.fields.name.transform.1"),
        (8, "entities.customer.fields.emial"),
        (9, "entities.customer.fields.phone.transform.0.e164"),
        (10, "entities.customer.fields.status"),
        (11, "entities.widget"),
        (17, "entities.product.fields.sku.transform.1.country"),
    ]


def test_string_shorthand_for_a_field(write_yaml: WriteYaml) -> None:
    mapping = load_mapping(write_yaml(HEAD + "      email: company_email\n", name="m.yaml"))
    assert mapping.entity("customer").native_path("email") == "company_email"


def test_entity_lookup_names_the_file(write_yaml: WriteYaml) -> None:
    mapping = load_mapping(write_yaml(HEAD, name="m.yaml"))
    with pytest.raises(KeyError, match="entity 'order' is not mapped"):
        mapping.entity("order")
