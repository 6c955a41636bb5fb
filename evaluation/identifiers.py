"""Synthetic patients: names, national numbers with valid check digits, dates, sites.

Every value is made up. Names come from Faker (en_GB, nl_NL, de_DE, fr_FR) or,
for about 30% of them, from a syllable generator, so that a recognizer that only
knows a gazetteer of real names is not flattered by the corpus. Each name
records its `name_source`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from faker import Faker

# --------------------------------------------------------------------------- sites

SITES = {
    "uk": {"locale": "en_GB", "lang": "en", "national": "nhs",
           "hospitals": ["St Mary's Hospital", "Royal Infirmary of Edinburgh", "Leeds General Infirmary",
                         "Addenbrooke's Hospital", "Queen Elizabeth Hospital Birmingham",
                         "Royal Free Hospital", "Ninewells Hospital"],
           "dates": ["dmy_slash", "d_mon_y", "iso", "dmy_dash_mon", "compact"]},
    "nl": {"locale": "nl_NL", "lang": "nl", "national": "bsn",
           "hospitals": ["Ziekenhuis Gelderse Vallei", "Amsterdam UMC", "Radboudumc", "Isala Zwolle",
                         "Maasstad Ziekenhuis", "Erasmus MC", "Rijnstate Arnhem"],
           "dates": ["dmy_dash", "dmy_dot", "iso", "compact", "d_mon_y"]},
    "be": {"locale": "nl_NL", "lang": "nl", "national": "rrn",
           "hospitals": ["UZ Leuven", "AZ Sint-Jan Brugge", "UZ Gent", "AZ Groeninge Kortrijk"],
           "dates": ["dmy_slash", "dmy_dot", "iso"]},
    "be_fr": {"locale": "fr_FR", "lang": "fr", "national": "rrn",
              "hospitals": ["CHU de Liège", "Cliniques universitaires Saint-Luc", "CHU UCL Namur"],
              "dates": ["dmy_slash", "iso", "d_mon_y"]},
    "de": {"locale": "de_DE", "lang": "de", "national": "kvnr",
           "hospitals": ["Klinikum Nord", "Charité Berlin", "Universitätsklinikum Heidelberg",
                         "Klinikum rechts der Isar", "St. Josef-Hospital Bochum", "Klinikum Nürnberg"],
           "dates": ["dmy_dot", "iso", "compact", "dmy_dash_mon"]},
    "fr": {"locale": "fr_FR", "lang": "fr", "national": "nir",
           "hospitals": ["CHU de Bordeaux", "Hôpital Pitié-Salpêtrière", "CHU de Lille",
                         "Hôpital Européen Georges-Pompidou", "Hospices Civils de Lyon", "CHU de Nantes"],
           "dates": ["dmy_slash", "iso", "d_mon_y", "compact"]},
    "us": {"locale": "en_GB", "lang": "en", "national": "ssn",
           "hospitals": ["Mercy General Hospital", "St. Luke's Medical Center", "Lakeside Regional Hospital",
                         "Riverside Memorial Hospital"],
           "dates": ["mdy_slash", "dmy_dash_mon", "iso", "compact"]},
}
SITE_WEIGHTS = {"uk": 4, "nl": 3, "be": 1, "be_fr": 1, "de": 2, "fr": 2, "us": 2}

# Labels per language; several synonyms each, as vendors differ.
LABELS = {
    "name": {"en": ["Name:", "Patient:", "Pt:", "Patient Name:"], "nl": ["Naam:", "Patiënt:", "Naam patiënt:"],
             "de": ["Name:", "Patient:", "Patientin:", "Geburtsname:"],
             "fr": ["Nom:", "Patient:", "Nom patient:", "Nom de naissance:", "Nom d'usage:"]},
    "dob": {"en": ["DOB:", "D.O.B.", "Date of birth:", "Born:"], "nl": ["Geb. datum:", "Geboortedatum:", "Geb.:"],
            "de": ["Geb.-Datum:", "Geburtsdatum:", "Geb.:", "geb."], "fr": ["Né(e) le:", "Date de naissance:", "DDN:"]},
    "mrn": {"en": ["MRN:", "Hosp No:", "Patient ID:", "PID:", "Unit No:", "ID:"],
            "nl": ["Patiëntnr:", "Pat.nr:", "ID:", "PID:"], "de": ["Pat.-Nr.:", "Patienten-ID:", "PID:", "ID:"],
            "fr": ["IPP:", "N° patient:", "ID patient:", "ID:"]},
    "study_date": {"en": ["Study Date:", "Exam Date:", "Date:", "Acq:"], "nl": ["Onderzoeksdatum:", "Datum:"],
                   "de": ["Untersuchung:", "Datum:", "Unters.-Datum:"], "fr": ["Date examen:", "Date:"]},
    "accession": {"en": ["Acc:", "Accession:", "ACC#", "Acc No:"], "nl": ["Accessienr:", "Acc:"],
                  "de": ["Acc.-Nr.:", "Auftrag:"], "fr": ["N° examen:", "Acc:"]},
    "phone": {"en": ["Tel:", "Phone:", "Mob:"], "nl": ["Tel:", "Telefoon:"], "de": ["Tel.:", "Telefon:"],
              "fr": ["Tél:", "Téléphone:"]},
    "address": {"en": ["Address:"], "nl": ["Adres:"], "de": ["Adresse:", "Anschrift:"], "fr": ["Adresse:"]},
    "ref": {"en": ["Ref:", "Referring:", "Ref. phys:"], "nl": ["Verwijzer:", "Aanvrager:"],
            "de": ["Zuweiser:", "Überweiser:"], "fr": ["Prescripteur:", "Médecin:"]},
    "sex": {"en": ["Sex:"], "nl": ["Geslacht:"], "de": ["Geschl.:"], "fr": ["Sexe:"]},
}
NATIONAL_LABELS = {"nhs": ["NHS No:", "NHS:", "NHS Number:"], "bsn": ["BSN:", "BSN"],
                   "rrn": ["RRN:", "INSZ:", "NISS:"], "kvnr": ["KVNR:", "Vers.-Nr.:"],
                   "nir": ["NIR:", "N° SS:"], "ssn": ["SSN:", "SS#"]}

MONTHS = {"en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(),
          "nl": "jan feb mrt apr mei jun jul aug sep okt nov dec".split(),
          "de": "Jan Feb Mär Apr Mai Jun Jul Aug Sep Okt Nov Dez".split(),
          "fr": "janv févr mars avr mai juin juil août sept oct nov déc".split()}


def fmt_date(d: dt.date, style: str, lang: str = "en") -> str:
    if isinstance(d, dt.datetime):  # a study's date and time: the date part (ISO would add the time)
        d = d.date()
    mon = MONTHS.get(lang, MONTHS["en"])[d.month - 1]
    return {
        "dmy_slash": f"{d.day:02d}/{d.month:02d}/{d.year}",
        "mdy_slash": f"{d.month:02d}/{d.day:02d}/{d.year}",
        "dmy_dash": f"{d.day:02d}-{d.month:02d}-{d.year}",
        "dmy_dot": f"{d.day:02d}.{d.month:02d}.{d.year}",
        "iso": d.isoformat(),
        "compact": f"{d.year}{d.month:02d}{d.day:02d}",
        "dmy_dash_mon": f"{d.day:02d}-{MONTHS['en'][d.month - 1]}-{d.year}",
        "d_mon_y": f"{d.day} {mon} {d.year}",
    }[style]


# --------------------------------------------------------------------------- check digits

def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        if digits[0] == 0:
            continue
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
        if check == 11:
            check = 0
        if check == 10:
            continue
        return "".join(map(str, digits + [check]))


def bsn(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(8)]
        if digits[0] == 0:
            continue
        s = sum(d * w for d, w in zip(digits, range(9, 1, -1)))
        last = s % 11  # 11-proef: sum(9..2) - last == 0 (mod 11)
        if last < 10:
            return "".join(map(str, digits + [last]))


def belgian_rrn(rng: random.Random, dob: dt.date, male: bool) -> str:
    serial = rng.randrange(1, 997, 2) if male else rng.randrange(2, 998, 2)
    body = f"{dob.year % 100:02d}{dob.month:02d}{dob.day:02d}{serial:03d}"
    n = int(("2" + body) if dob.year >= 2000 else body)
    check = 97 - n % 97
    return f"{body[0:2]}.{body[2:4]}.{body[4:6]}-{body[6:9]}.{check:02d}"


def french_nir(rng: random.Random, dob: dt.date, male: bool) -> str:
    dept = rng.choice(["75", "33", "59", "69", "44", "13", "31"])
    commune, order = rng.randint(1, 999), rng.randint(1, 999)
    body = f"{1 if male else 2}{dob.year % 100:02d}{dob.month:02d}{dept}{commune:03d}{order:03d}"
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def us_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def german_kvnr(rng: random.Random) -> str:
    letter = rng.choice("ABCDEFGHIJKLMNOPRSTUVWXYZ")
    digits = [rng.randint(0, 9) for _ in range(8)]
    seq = [int(c) for c in f"{ord(letter) - 64:02d}"] + digits
    total = 0
    for i, d in enumerate(seq):
        p = d * (1 if i % 2 == 0 else 2)
        total += p // 10 + p % 10
    return letter + "".join(map(str, digits)) + str(total % 10)


# --------------------------------------------------------------------------- names

_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kl", "l", "m", "n", "p", "pr", "r", "s",
           "st", "t", "tr", "v", "w", "z", "th", "ch", "sk", "j"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ou", "ei", "y", "aa", "oe"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "nd", "rt", "sk", "x", "th", "k"]


def _faker_names() -> set[str]:
    known = set()
    for loc in ("en_GB", "nl_NL", "de_DE", "fr_FR", "en_US"):
        f = Faker(loc)
        for attr in ("last_names", "first_names", "first_names_male", "first_names_female"):
            for prov in f.providers:
                v = getattr(prov, attr, None)
                if v:
                    known.update(str(x).lower() for x in (v.keys() if hasattr(v, "keys") else v))
    return known


_KNOWN: set[str] | None = None


def syllable_name(rng: random.Random, syllables: tuple[int, int] = (2, 3)) -> str:
    """A pronounceable made-up name that is in none of Faker's name lists."""
    global _KNOWN
    if _KNOWN is None:
        _KNOWN = _faker_names()
    while True:
        n = rng.randint(*syllables)
        s = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + (rng.choice(_CODAS) if i == n - 1 else "")
                    for i in range(n))
        if 4 <= len(s) <= 11 and s.lower() not in _KNOWN:
            return s.capitalize()


# --------------------------------------------------------------------------- a patient

@dataclass
class Patient:
    site: str
    lang: str
    family: str
    given: str
    family_source: str
    given_source: str
    male: bool
    dob: dt.date
    national_kind: str
    national: str
    mrn: str
    mrn_style: str
    accession: str
    phone: str
    postcode: str
    street: str
    city: str
    hospital: str
    physician: str
    physician_source: str
    study: dt.datetime
    date_styles: list[str] = field(default_factory=list)

    @property
    def name_source(self) -> str:
        srcs = {self.family_source, self.given_source}
        return srcs.pop() if len(srcs) == 1 else "mixed"

    def name_form(self, form: str) -> str:
        f, g = self.family, self.given
        return {
            "caret": f"{f.upper()}^{g.upper()}",
            "caret_mixed": f"{f}^{g}",
            "comma": f"{f}, {g}",
            "comma_upper": f"{f.upper()}, {g.upper()}",
            "comma_upper_nospace": f"{f.upper()},{g.upper()}",
            "given_family": f"{g} {f}",
            "family_given_upper": f"{f.upper()} {g}",
            "initial": f"{g[0]}. {f}",
        }[form]

    def date(self, d, rng: random.Random, style: str | None = None) -> str:
        return fmt_date(d, style or rng.choice(self.date_styles), self.lang)

    def national_formatted(self, rng: random.Random) -> str:
        v = self.national
        if self.national_kind == "nhs" and rng.random() < 0.6:
            return f"{v[:3]} {v[3:6]} {v[6:]}"
        if self.national_kind == "bsn" and rng.random() < 0.3:
            return f"{v[:4]}.{v[4:6]}.{v[6:]}"
        return v


NAME_FORMS = ["caret", "caret_mixed", "comma", "comma_upper", "comma_upper_nospace", "given_family",
              "family_given_upper"]


def _mrn(rng: random.Random) -> tuple[str, str]:
    style = rng.choice(["A7", "RX7", "dash", "digits8", "digits10", "H6"])
    if style == "A7":
        return rng.choice("ABCDEFGHJKMNPRSTUVWXYZ") + f"{rng.randint(0, 9999999):07d}", style
    if style == "RX7":
        return rng.choice(["RX", "KH", "MR", "UZ", "PZ"]) + f"{rng.randint(0, 9999999):07d}", style
    if style == "dash":
        return f"{rng.randint(10, 99)}-{rng.randint(0, 999999):06d}", style
    if style == "digits8":
        return f"{rng.randint(10000000, 99999999)}", style
    if style == "digits10":
        return f"{rng.randint(0, 9999999999):010d}", style
    return "H" + f"{rng.randint(100000, 999999)}", style


def _phone(site: str, rng: random.Random) -> str:
    r = lambda n: "".join(str(rng.randint(0, 9)) for _ in range(n))  # noqa: E731
    return {
        "uk": rng.choice([f"020 7946 {r(4)}", f"0113 496 {r(4)}", f"07700 900{r(3)}"]),
        "nl": rng.choice([f"+31 20 {r(3)} {r(4)}", f"06-{r(8)}", f"0317-{r(6)}"]),
        "be": f"+32 16 {r(2)} {r(2)} {r(2)}", "be_fr": f"04 {r(3)} {r(2)} {r(2)}",
        "de": rng.choice([f"+49 30 {r(8)}", f"(040) {r(7)}"]),
        "fr": f"0{rng.randint(1, 5)} {r(2)} {r(2)} {r(2)} {r(2)}",
        "us": f"({rng.randint(201, 989)}) 555-{r(4)}",
    }[site]


def _postcode(site: str, rng: random.Random, fake: Faker) -> str:
    if site == "be" or site == "be_fr":
        return str(rng.randint(1000, 9999))
    if site == "us":
        return f"{rng.randint(10000, 99999)}"
    return fake.postcode()


def _has_accent(s: str) -> bool:
    return any(ord(c) > 127 for c in s)


def accent_syllables(name: str, lang: str, rng: random.Random) -> str:
    """Put one accented vowel the language uses into a made-up name (still in no name list)."""
    pool = ACCENT_VOWELS.get(lang, ACCENT_VOWELS["fr"])
    spots = [i for i, c in enumerate(name) if c.lower() in pool]
    if not spots:
        return name
    i = rng.choice(spots)
    c = rng.choice(pool[name[i].lower()])
    return name[:i] + (c.upper() if name[i].isupper() else c) + name[i + 1:]


def make_patient(rng: random.Random, site: str | None = None, accented: bool | None = None) -> Patient:
    """A made-up patient. `accented`: force (True) or forbid (False) diacritics in the name; by default
    about half of Dutch, German and French patients get them (Müller, Zoë, Hélène, made-up Brëndor...)."""
    site = site or rng.choices(list(SITE_WEIGHTS), weights=list(SITE_WEIGHTS.values()))[0]
    s = SITES[site]
    fake = Faker(s["locale"])
    fake.seed_instance(rng.randrange(2**31))
    male = rng.random() < 0.5
    if accented is None:
        accented = s["lang"] in ACCENTED and rng.random() < 0.5

    def pick(kind: str) -> tuple[str, str]:
        if rng.random() < 0.3:
            return syllable_name(rng), "syllables"
        if kind == "family":
            return fake.last_name(), f"faker:{s['locale']}"
        return (fake.first_name_male() if male else fake.first_name_female()), f"faker:{s['locale']}"

    family, fs = pick("family")
    given, gs = pick("given")
    # keep names on one line and in plain glyphs OCR has seen
    family = family.split(" ")[-1] if rng.random() < 0.5 else family
    if accented and not (_has_accent(family) or _has_accent(given)):
        lang = s["lang"] if s["lang"] in ACCENTED else rng.choice(list(ACCENTED))
        which = rng.choice(["family", "given", "both"])
        if which in ("family", "both"):
            if fs == "syllables":
                family = accent_syllables(family, lang, rng)
            else:
                family, fs = rng.choice(ACCENTED[lang]["family"]), f"list:accented-{lang}"
        if which in ("given", "both"):
            if gs == "syllables":
                given = accent_syllables(given, lang, rng)
            else:
                pool = ACCENTED[lang]["male" if male else "female"]
                given, gs = rng.choice(pool), f"list:accented-{lang}"
    dob = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randint(0, 33000))
    study = dt.datetime(2014, 1, 1) + dt.timedelta(days=rng.randint(0, 4000), seconds=rng.randint(7 * 3600, 20 * 3600))
    national_kind = s["national"]
    national = {"nhs": lambda: nhs_number(rng), "bsn": lambda: bsn(rng),
                "rrn": lambda: belgian_rrn(rng, dob, male), "nir": lambda: french_nir(rng, dob, male),
                "ssn": lambda: us_ssn(rng), "kvnr": lambda: german_kvnr(rng)}[national_kind]()
    mrn, mrn_style = _mrn(rng)
    accession = rng.choice([f"{study.year}R{rng.randint(0, 9999999):07d}", f"{rng.randint(10000000, 99999999)}",
                            f"ACC{rng.randint(100000, 999999)}", f"RAD-{rng.randint(100000, 999999)}"])
    if rng.random() < 0.3:
        pfam, psrc = syllable_name(rng), "syllables"
    else:
        pfam, psrc = fake.last_name(), f"faker:{s['locale']}"
    titles = {"en": ["Dr {f}", "Dr. {f}", "Dr {i}. {f}"], "nl": ["dr. {f}", "Dr. {i}. {f}"],
              "de": ["Dr. {f}", "Prof. Dr. {f}", "Dr. med. {f}"], "fr": ["Dr {f}", "Pr {f}", "Dr {i}. {f}"]}
    physician = rng.choice(titles[s["lang"]]).format(f=pfam, i=rng.choice("ABCDEFGHJKLMNPRSTVW"))
    return Patient(
        site=site, lang=s["lang"], family=family, given=given, family_source=fs, given_source=gs, male=male,
        dob=dob, national_kind=national_kind, national=national, mrn=mrn, mrn_style=mrn_style,
        accession=accession, phone=_phone(site, rng), postcode=_postcode(site, rng, fake),
        street=fake.street_address().replace("\n", " "), city=fake.city(), hospital=rng.choice(s["hospitals"]),
        physician=physician, physician_source=psrc, study=study, date_styles=list(s["dates"]),
    )


# Names with diacritics, for the share of NL/DE/FR patients that must have them (Faker's lists have
# few Dutch ones). Latin-1 letters only, which every font on the machine draws.
ACCENTED = {
    "de": {"family": ["Müller", "Schäfer", "Köhler", "Böhm", "Jäger", "Krüger", "Völker", "Günther", "Weiß",
                      "Dürr", "Fröhlich", "Möller", "Brückner", "Süßmann", "Hölzl", "Gärtner", "Lübben", "Schröder"],
           "male": ["Jürgen", "Jörg", "Björn", "Günter", "Sören", "Jörn", "Hüseyin", "Matthäus"],
           "female": ["Zoë", "Käthe", "Bärbel", "Dörte", "Jördis", "Renée", "Özlem", "Anaïs"]},
    "nl": {"family": ["Noël", "Citroën", "Hoëvenaars", "Geërts", "Boërs", "Kleinjan-Müller", "Loüet", "Ruïter",
                      "Dériks", "Brönner", "Coëlho", "Öztürk", "Çelik", "Gülen"],
           "male": ["Daniël", "Joël", "Raphaël", "Michaël", "Noël", "Ismaël", "Maël", "Rafaël"],
           "female": ["Zoë", "Chloë", "Mariëlle", "Anaïs", "Gaëlle", "Danaë", "Noëlle", "Ariënne"]},
    "fr": {"family": ["Lefèvre", "Mégret", "Bérubé", "Hélias", "Géraud", "Lemaître", "Fréchette", "Ménard",
                      "Thébault", "Bréhier", "Dupré", "Gérard", "Bélanger", "Désiré", "Lécuyer", "Pérès", "Benoît"],
           "male": ["Jérôme", "François", "Benoît", "Frédéric", "Stéphane", "Loïc", "Gaël", "Hervé", "Noël"],
           "female": ["Hélène", "Zoé", "Léa", "Chloé", "Noémie", "Clémence", "Agnès", "Mélanie", "Éloïse",
                      "Élodie", "Héloïse", "Anaïs", "Zoë"]},
}
ACCENT_VOWELS = {"de": {"a": "ä", "o": "ö", "u": "ü"},
                 "nl": {"e": "ëé", "i": "ï", "o": "ö", "u": "ü"},
                 "fr": {"e": "éèêë", "a": "àâ", "i": "ïî", "o": "ô", "u": "û", "c": "ç"}}


def label(kind: str, lang: str, rng: random.Random) -> str:
    return rng.choice(LABELS[kind].get(lang) or LABELS[kind]["en"])
