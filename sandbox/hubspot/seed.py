"""Deterministic, realistic seed companies, generated fast (no Faker: 100,000 in about a second)."""
from __future__ import annotations

import random
import re
from typing import Any

_SEED_STEMS = ("Acme", "Apex", "Blue River", "Brightline", "Cedar", "Crescent", "Delta", "Evergreen", "Falcon",
               "Granite", "Harbor", "Horizon", "Ironwood", "Juniper", "Keystone", "Lakeside", "Meridian",
               "Nordwind", "Northstar", "Oakridge", "Pinnacle", "Quantum", "Redwood", "Riverside", "Sapphire",
               "Silverline", "Summit", "Sunrise", "Terra", "Titan", "Union", "Vertex", "Westfield", "Willow",
               "Zenith", "Alder", "Beacon", "Copper", "Driftwood", "Emerald", "Foxglove", "Golden Gate",
               "Highland", "Indigo", "Jasper", "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid")
_SEED_SECTORS = ("Logistics", "Manufacturing", "Foods", "Analytics", "Software", "Consulting", "Engineering",
                 "Textiles", "Pharma", "Energy", "Retail", "Motors", "Systems", "Labs", "Media", "Farms",
                 "Hotels", "Construction", "Robotics", "Trading", "Optics", "Packaging", "Furniture", "Marine")
# country, tld, phone prefix + area codes, (city, zip stem, state), legal forms, streets
_SEED_COUNTRIES: tuple[tuple[Any, ...], ...] = (
    ("United States", ".com", "+1", ("512", "617", "303", "206"),
     (("Austin", "787", "TX"), ("Boston", "021", "MA"), ("Denver", "802", "CO"), ("Seattle", "981", "WA")),
     ("Inc.", "LLC", "Corp."), ("Main Street", "Market Street", "Oak Avenue", "Park Avenue")),
    ("Germany", ".de", "+49", ("30", "89", "40", "221"),
     (("Berlin", "101", "Berlin"), ("Munich", "803", "Bavaria"), ("Hamburg", "200", "Hamburg"),
      ("Cologne", "506", "North Rhine-Westphalia")),
     ("GmbH", "AG", "KG"), ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee")),
    ("France", ".fr", "+33", ("1", "4", "5"),
     (("Paris", "750", "Île-de-France"), ("Lyon", "690", "Auvergne-Rhône-Alpes"),
      ("Bordeaux", "330", "Nouvelle-Aquitaine")),
     ("SAS", "SARL", "SA"), ("Rue de la Paix", "Avenue Victor Hugo", "Rue du Commerce")),
    ("United Kingdom", ".co.uk", "+44", ("20", "161", "131"),
     (("London", "EC1", "England"), ("Manchester", "M1", "England"), ("Edinburgh", "EH1", "Scotland")),
     ("Ltd", "PLC", "LLP"), ("High Street", "Station Road", "Church Lane")),
    ("Netherlands", ".nl", "+31", ("20", "10", "30"),
     (("Amsterdam", "101", "North Holland"), ("Rotterdam", "301", "South Holland"), ("Utrecht", "351", "Utrecht")),
     ("B.V.", "N.V."), ("Kerkstraat", "Dorpsstraat", "Molenweg")),
    ("Spain", ".es", "+34", ("91", "93", "96"),
     (("Madrid", "280", "Madrid"), ("Barcelona", "080", "Catalonia"), ("Valencia", "460", "Valencia")),
     ("S.L.", "S.A."), ("Calle Mayor", "Gran Vía", "Calle del Sol")),
    ("Canada", ".ca", "+1", ("416", "604", "514"),
     (("Toronto", "M5H", "ON"), ("Vancouver", "V6B", "BC"), ("Montreal", "H2Y", "QC")),
     ("Inc.", "Ltd."), ("King Street", "Queen Street", "Maple Road")),
    ("Australia", ".com.au", "+61", ("2", "3", "7"),
     (("Sydney", "200", "NSW"), ("Melbourne", "300", "VIC"), ("Brisbane", "400", "QLD")),
     ("Pty Ltd",), ("George Street", "Collins Street", "Queen Street")),
)
_SLUG = re.compile(r"[^a-z0-9]+")


def seed_company(rng: random.Random, seen_names: set[str], seen_domains: set[str]) -> dict[str, str]:
    """One company: name, domain, website, phone and address of one of eight countries."""
    country, tld, prefix, areas, cities, forms, streets = _SEED_COUNTRIES[rng.randrange(len(_SEED_COUNTRIES))]
    stem = _SEED_STEMS[rng.randrange(len(_SEED_STEMS))]
    sector = _SEED_SECTORS[rng.randrange(len(_SEED_SECTORS))]
    city, zip_stem, state = cities[rng.randrange(len(cities))]
    form = forms[rng.randrange(len(forms))]
    base = f"{stem} {sector}"
    name = f"{base} {form}"
    n = 1
    while name in seen_names:
        n += 1
        name = f"{base} {city} {n} {form}" if n > 2 else f"{base} {city} {form}"
    seen_names.add(name)
    slug = _SLUG.sub("", (base if n == 1 else f"{base}{city}{n}").lower())
    domain = f"{slug}{tld}"
    k = 1
    while domain in seen_domains:
        k += 1
        domain = f"{slug}{k}{tld}"
    seen_domains.add(domain)
    zip_code = zip_stem + "".join(str(rng.randrange(10)) for _ in range(max(0, 5 - len(zip_stem))))
    if country in ("United Kingdom", "Canada"):
        zip_code = f"{zip_stem} {rng.randrange(10)}{chr(65 + rng.randrange(26))}{chr(65 + rng.randrange(26))}"
    return {
        "name": name, "domain": domain, "website": f"https://www.{domain}",
        "phone": f"{prefix} {areas[rng.randrange(len(areas))]} {rng.randrange(1000000, 9999999)}",
        "address": f"{rng.randrange(1, 250)} {streets[rng.randrange(len(streets))]}",
        "city": city, "zip": zip_code, "state": state, "country": country,
        "industry": sector.upper(), "numberofemployees": str(rng.choice((5, 12, 25, 60, 150, 400, 1200))),
    }
