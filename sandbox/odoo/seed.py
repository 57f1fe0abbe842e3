"""Seed data of the Odoo simulator: countries, a few states, and realistic generated partners.

Partners are deliberately as messy as a real customer base: names from several locales, phone
numbers in national, international and sloppy formats, mixed-case emails (a few with stray
spaces, a few missing), websites with and without a scheme. Generation is deterministic per seed.
"""
from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pycountry

# (country code, state code, name) -- Odoo's own codes for these states.
STATES: tuple[tuple[str, str, str], ...] = (
    ("US", "CA", "California"), ("US", "NY", "New York"), ("US", "TX", "Texas"),
    ("US", "WA", "Washington"), ("US", "FL", "Florida"), ("US", "IL", "Illinois"),
    ("US", "MA", "Massachusetts"), ("CA", "ON", "Ontario"), ("CA", "QC", "Quebec"),
    ("CA", "BC", "British Columbia"), ("AU", "NSW", "New South Wales"), ("AU", "VIC", "Victoria"),
    ("DE", "BE", "Berlin"), ("DE", "BY", "Bayern"), ("DE", "HH", "Hamburg"),
    ("DE", "NW", "Nordrhein-Westfalen"), ("IN", "MH", "Maharashtra"), ("IN", "KA", "Karnataka"),
)


def countries() -> list[tuple[str, str]]:
    """All ISO 3166 countries as (alpha-2 code, name), in code order like Odoo's base data."""
    return sorted((c.alpha_2.upper(), getattr(c, "common_name", None) or c.name) for c in pycountry.countries)


NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Emily",
            "Chris", "Sarah", "Daniel", "Jessica", "Matthew", "Ashley"),
           ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clark",
            "Walker", "O'Brien", "Thompson", "White", "Harris", "Young")),
    "de": (("Lukas", "Anna", "Jürgen", "Sabine", "Maximilian", "Katrin", "Stefan", "Ursula", "Tobias", "Jörg",
            "Lena", "Björn", "Monika", "Felix"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
            "Hoffmann", "Köhler", "Groß", "Krüger", "Zimmermann")),
    "fr": (("Jean", "Marie", "Pierre", "Camille", "Luc", "Hélène", "François", "Chloé", "Nicolas", "Élodie",
            "Julien", "Amélie"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Lefèvre",
            "Moreau", "Girard")),
    "es": (("José", "María", "Carlos", "Lucía", "Javier", "Carmen", "Alejandro", "Sofía", "Miguel", "Ana"),
           ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
            "Núñez")),
    "it": (("Giuseppe", "Giulia", "Marco", "Francesca", "Luca", "Chiara", "Alessandro", "Sara", "Matteo"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "De Luca")),
    "nl": (("Daan", "Sanne", "Bram", "Fleur", "Jeroen", "Anouk", "Pieter", "Lotte", "Sven", "Ingrid", "Lars",
            "Astrid"),
           ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Andersson", "Johansson",
            "Nilsson", "Lindqvist", "Peeters", "Maes")),
    "pl": (("Piotr", "Anna", "Krzysztof", "Agnieszka", "Tomasz", "Małgorzata", "Paweł", "Katarzyna"),
           ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński")),
    "pt": (("João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Gabriel", "Larissa"),
           ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Rodrigues", "Almeida")),
    "hi": (("Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya"),
           ("Sharma", "Patel", "Singh", "Kumar", "Gupta", "Iyer", "Reddy", "Nair")),
    "ja": (("Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi", "Kenji", "Sakura"),
           ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura")),
}

ADJECTIVES = ("Blue", "North", "Bright", "Summit", "Pioneer", "Silver", "Green", "Atlas", "Nova", "Alpine",
              "Coastal", "Prime", "Red Oak", "Evergreen", "Granite", "Orbit")
NOUNS = ("Logistics", "Systems", "Foods", "Tools", "Engineering", "Textiles", "Partners", "Solutions",
         "Trading", "Analytics", "Robotics", "Furniture", "Medical", "Energy", "Packaging", "Optics")


@dataclass(frozen=True)
class CountryProfile:
    """How addresses, phones and companies look in one country."""

    code: str
    weight: int
    locale: str
    cities: tuple[tuple[str, str | None, str], ...]  # city, state code, zip pattern (# digit, @ letter)
    streets: tuple[str, ...]
    street_format: str
    phones: tuple[str, ...]
    suffixes: tuple[str, ...]
    vat: str | None
    tld: str
    mail: tuple[str, ...]


PROFILES: tuple[CountryProfile, ...] = (
    CountryProfile("US", 26, "en", (("New York", "NY", "100##"), ("San Francisco", "CA", "941##"),
                                    ("Austin", "TX", "787##"), ("Seattle", "WA", "981##"),
                                    ("Miami", "FL", "331##"), ("Chicago", "IL", "606##"), ("Boston", "MA", "021##")),
                   ("Main St", "Oak Avenue", "Maple Drive", "Market Street", "Broadway", "Elm St."), "{n} {s}",
                   ("(###) ###-####", "+1 ###-###-####", "###.###.####", "+1##########", "1-###-###-####"),
                   ("Inc.", "LLC", "Corp.", "Co."), None, "com", ("gmail.com", "outlook.com", "yahoo.com")),
    CountryProfile("DE", 12, "de", (("Berlin", "BE", "10###"), ("München", "BY", "80###"),
                                    ("Hamburg", "HH", "20###"), ("Köln", "NW", "50###")),
                   ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee"), "{s} {n}",
                   ("+49 30 #######", "030 ########", "+49 (0)89 ######", "0049 40 #######", "+4917########"),
                   ("GmbH", "AG", "GmbH & Co. KG", "e.K."), "DE#########", "de", ("gmx.de", "web.de", "t-online.de")),
    CountryProfile("FR", 8, "fr", (("Paris", None, "75###"), ("Lyon", None, "69###"), ("Marseille", None, "13###"),
                                   ("Toulouse", None, "31###")),
                   ("rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue du Moulin"), "{n} {s}",
                   ("+33 1 ## ## ## ##", "01 ## ## ## ##", "+33 6 ## ## ## ##", "06########"),
                   ("SARL", "SAS", "SA"), "FR###########", "fr", ("orange.fr", "free.fr", "laposte.net")),
    CountryProfile("GB", 10, "en", (("London", None, "EC1A #@@"), ("Manchester", None, "M# #@@"),
                                    ("Birmingham", None, "B## #@@"), ("Leeds", None, "LS# #@@")),
                   ("High Street", "Station Road", "Church Lane", "Victoria Road"), "{n} {s}",
                   ("+44 20 #### ####", "020 #### ####", "07### ######", "+447#########"),
                   ("Ltd", "PLC", "LLP"), "GB#########", "co.uk", ("btinternet.com", "yahoo.co.uk", "gmail.com")),
    CountryProfile("ES", 5, "es", (("Madrid", None, "28###"), ("Barcelona", None, "08###"),
                                   ("Valencia", None, "46###")),
                   ("Calle Mayor", "Gran Vía", "Avenida de la Constitución"), "{s}, {n}",
                   ("+34 91 ### ## ##", "+34 6## ### ###", "91 ### ## ##"),
                   ("S.L.", "S.A."), "ESB########", "es", ("telefonica.net", "gmail.com")),
    CountryProfile("IT", 5, "it", (("Roma", None, "00###"), ("Milano", None, "20###"), ("Torino", None, "10###")),
                   ("Via Roma", "Corso Italia", "Via Garibaldi"), "{s}, {n}",
                   ("+39 06 ########", "+39 3## ### ####", "02 ########"),
                   ("S.r.l.", "S.p.A."), "IT###########", "it", ("libero.it", "virgilio.it")),
    CountryProfile("NL", 5, "nl", (("Amsterdam", None, "10## @@"), ("Rotterdam", None, "30## @@"),
                                   ("Utrecht", None, "35## @@")),
                   ("Kerkstraat", "Dorpsstraat", "Stationsweg"), "{s} {n}",
                   ("+31 20 ### ####", "020-#######", "+31 6 ########"),
                   ("B.V.", "N.V."), "NL#########B01", "nl", ("ziggo.nl", "kpnmail.nl")),
    CountryProfile("CA", 5, "en", (("Toronto", "ON", "M5V #@#"), ("Montréal", "QC", "H2X #@#"),
                                   ("Vancouver", "BC", "V6B #@#")),
                   ("King St W", "Rue Sainte-Catherine", "Granville St"), "{n} {s}",
                   ("+1 416-###-####", "(514) ###-####", "604.###.####"),
                   ("Inc.", "Ltd."), None, "ca", ("rogers.com", "gmail.com")),
    CountryProfile("AU", 4, "en", (("Sydney", "NSW", "2###"), ("Melbourne", "VIC", "3###")),
                   ("George St", "Collins St", "Pitt St"), "{n} {s}",
                   ("+61 2 #### ####", "(02) #### ####", "04## ### ###", "+614########"),
                   ("Pty Ltd",), None, "com.au", ("bigpond.com", "gmail.com")),
    CountryProfile("AT", 3, "de", (("Wien", None, "1###"), ("Graz", None, "8###")),
                   ("Ringstraße", "Mariahilfer Straße"), "{s} {n}",
                   ("+43 1 #######", "01 #######", "+43 664 #######"),
                   ("GmbH", "AG"), "ATU########", "at", ("gmx.at", "aon.at")),
    CountryProfile("CH", 3, "de", (("Zürich", None, "8###"), ("Genève", None, "12##"), ("Basel", None, "40##")),
                   ("Bahnhofstrasse", "Rue du Rhône"), "{s} {n}",
                   ("+41 44 ### ## ##", "044 ### ## ##", "+41 79 ### ## ##"),
                   ("AG", "GmbH", "SA"), "CHE-###.###.### MWST", "ch", ("bluewin.ch", "gmail.com")),
    CountryProfile("BE", 3, "nl", (("Bruxelles", None, "1###"), ("Antwerpen", None, "2###"), ("Gent", None, "9###")),
                   ("Rue Neuve", "Meir", "Veldstraat"), "{s} {n}",
                   ("+32 2 ### ## ##", "02 ### ## ##", "+32 4## ## ## ##"),
                   ("BV", "SRL", "NV"), "BE0#########", "be", ("skynet.be", "telenet.be")),
    CountryProfile("SE", 2, "nl", (("Stockholm", None, "11# ##"), ("Göteborg", None, "41# ##")),
                   ("Drottninggatan", "Kungsgatan"), "{s} {n}",
                   ("+46 8 ### ### ##", "08-### ### ##", "+46 70 ### ## ##"),
                   ("AB",), "SE############", "se", ("telia.com", "gmail.com")),
    CountryProfile("IE", 2, "en", (("Dublin", None, "D0# @###"), ("Cork", None, "T12 @###")),
                   ("O'Connell Street", "Grafton Street"), "{n} {s}",
                   ("+353 1 ### ####", "01 ### ####", "+353 8# ### ####"),
                   ("Ltd", "DAC"), "IE#######@", "ie", ("eircom.net", "gmail.com")),
    CountryProfile("PL", 2, "pl", (("Warszawa", None, "00-###"), ("Kraków", None, "30-###")),
                   ("ul. Marszałkowska", "ul. Floriańska"), "{s} {n}",
                   ("+48 22 ### ## ##", "+48 5## ### ###", "22 ### ## ##"),
                   ("sp. z o.o.", "S.A."), "PL##########", "pl", ("wp.pl", "onet.pl")),
    CountryProfile("BR", 2, "pt", (("São Paulo", None, "01###-###"), ("Rio de Janeiro", None, "20###-###")),
                   ("Rua Augusta", "Avenida Paulista"), "{s}, {n}",
                   ("+55 11 9####-####", "(11) 9####-####", "+55 21 ####-####"),
                   ("Ltda.", "S.A."), None, "com.br", ("uol.com.br", "gmail.com")),
    CountryProfile("IN", 2, "hi", (("Mumbai", "MH", "400###"), ("Bengaluru", "KA", "560###")),
                   ("MG Road", "Linking Road"), "{n}, {s}",
                   ("+91 22 #### ####", "+91 98### #####", "098## #####"),
                   ("Pvt. Ltd.", "Ltd."), None, "in", ("rediffmail.com", "gmail.com")),
    CountryProfile("JP", 1, "ja", (("Tokyo", None, "1##-####"), ("Osaka", None, "5##-####")),
                   ("Ginza", "Umeda"), "{s} {n}",
                   ("+81 3-####-####", "03-####-####", "090-####-####"),
                   ("K.K.", "Co., Ltd."), None, "jp", ("yahoo.co.jp", "gmail.com")),
)

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def ascii_slug(text: str, sep: str = "") -> str:
    """Lower-case ASCII letters and digits of ``text`` (ü -> u, spaces -> ``sep``)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return sep.join("".join(ch for ch in word if ch.isalnum()) for word in plain.split() if word)


class PartnerGenerator:
    """Generates raw res.partner rows (stored values) for ``seed_partners``."""

    def __init__(self, seed: int, country_ids: dict[str, int], state_ids: dict[tuple[str, str], int]) -> None:
        self.rng = random.Random(seed)
        self.country_ids = country_ids
        self.state_ids = state_ids
        self.used_emails: set[str] = set()
        weights = [p.weight for p in PROFILES]
        total = sum(weights)
        self._cumulative = []
        acc = 0
        for w in weights:
            acc += w
            self._cumulative.append(acc / total)

    def _profile(self) -> CountryProfile:
        r = self.rng.random()
        for profile, edge in zip(PROFILES, self._cumulative):
            if r < edge:
                return profile
        return PROFILES[-1]

    def _pattern(self, pattern: str) -> str:
        rng = self.rng
        out = []
        for ch in pattern:
            if ch == "#":
                out.append("0123456789"[rng.randrange(10)])
            elif ch == "@":
                out.append(_LETTERS[rng.randrange(len(_LETTERS))])
            else:
                out.append(ch)
        return "".join(out)

    def _unique_email(self, local: str, domain: str) -> str:
        candidate = f"{local}@{domain}"
        n = 1
        while candidate.lower() in self.used_emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used_emails.add(candidate.lower())
        return candidate

    def rows(self, n: int) -> Iterator[dict[str, Any]]:
        """``n`` partner rows: about 30% companies, the rest individuals."""
        rng = self.rng
        for _ in range(n):
            p = self._profile()
            firsts, lasts = NAMES[p.locale]
            first, last = rng.choice(firsts), rng.choice(lasts)
            is_company = rng.random() < 0.3
            city, state, zip_pattern = rng.choice(p.cities)
            row: dict[str, Any] = {
                "is_company": is_company,
                "type": "contact",
                "lang": "en_US",
                "active": True,
                "customer_rank": 1 if rng.random() < 0.85 else 0,
                "supplier_rank": 1 if rng.random() < 0.12 else 0,
                "street": p.street_format.format(n=rng.randint(1, 250), s=rng.choice(p.streets)),
                "city": city,
                "zip": self._pattern(zip_pattern),
                "country_id": self.country_ids.get(p.code),
            }
            if state is not None and (p.code, state) in self.state_ids:
                row["state_id"] = self.state_ids[(p.code, state)]
            if rng.random() < 0.85:
                row["phone"] = self._pattern(rng.choice(p.phones))
            if is_company:
                style = rng.random()
                if style < 0.45:
                    name = f"{last} {rng.choice(p.suffixes)}"
                elif style < 0.6:
                    name = f"{last} & {rng.choice(lasts)} {rng.choice(p.suffixes)}"
                else:
                    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(p.suffixes)}"
                slug = ascii_slug(name.rsplit(" ", 1)[0] if " " in name else name) or "company"
                domain = f"{slug}.{p.tld}"
                row["name"] = name
                if rng.random() < 0.95:
                    row["email"] = self._unique_email(rng.choice(("info", "sales", "contact", "office",
                                                                  "accounts", "hello")), domain)
                if rng.random() < 0.65:
                    row["website"] = rng.choice(("https://www.{d}", "www.{d}", "http://{d}", "{d}",
                                                 "https://{d}/")).format(d=domain)
                if p.vat is not None and rng.random() < 0.5:
                    row["vat"] = self._pattern(p.vat)
                if rng.random() < 0.2:
                    row["credit_limit"] = float(rng.choice((5000, 10000, 25000, 50000, 100000)))
            else:
                row["name"] = f"{first} {last}" if rng.random() < 0.93 else f"{last}, {first}"
                if rng.random() < 0.35:
                    row["mobile"] = self._pattern(rng.choice(p.phones))
                if rng.random() < 0.96:
                    f_slug, l_slug = ascii_slug(first), ascii_slug(last, ".")
                    local = rng.choice((f"{f_slug}.{l_slug}", f"{f_slug[:1]}{l_slug}", f"{f_slug}{l_slug}",
                                        f"{l_slug}.{f_slug}", f"{f_slug}_{l_slug}"))
                    email = self._unique_email(local, rng.choice(p.mail))
                    mess = rng.random()
                    if mess < 0.08:
                        email = email.title()  # "John.Smith@Gmail.Com": case is not significant
                    elif mess < 0.10:
                        email = f" {email} "
                    row["email"] = email
            yield row
