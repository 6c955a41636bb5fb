#!/usr/bin/env python3
"""Regenerate the person-name gazetteer used by the OCR text recognizers.

The lists come from the *class attributes* of faker's person providers (the
curated name tables faker samples from), not from random samples, so the output
is deterministic for a given faker version. The runtime never imports faker: it
reads only the two gzip'd files this script writes into
addons/scrubgate/engine/recognizers/data/.

Entries are lowercased and accent-folded the same way the runtime folds OCR
text (see recognizers/text.py:fold). Entries shorter than 3 letters are
dropped (too many collide with abbreviations on viewer screens: "Li", "Ng",
"Al"), and so is every entry that is also a common English/Dutch/German/French
word or a medical/technical term that a viewer UI prints: a gazetteer hit on
"Long", "Mark" or "Gain" would black out the technical annotation a clinician
needs. Common words come from STOP_WORDS below plus faker's own lorem word
lists (en_US for given names; en_US, nl_NL, de_DE and fr_FR for surnames),
taken from the same pinned package, so the output stays reproducible.

Usage:  .venv/bin/python scripts/build_gazetteer.py [--check]
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "addons"))

from scrubgate.engine.recognizers.text import fold  # noqa: E402  (same folding as runtime)
from scrubgate.engine.recognizers.vocab import TECH_WORDS  # noqa: E402

DATA = ROOT / "addons" / "scrubgate" / "engine" / "recognizers" / "data"

LOCALES = ("en_GB", "en_US", "en_IE", "nl_NL", "nl_BE", "de_DE", "de_AT", "de_CH", "fr_FR",
           "fr_BE", "en_IN", "es_ES", "it_IT", "pl_PL", "pt_PT")
LOREM_LOCALES = ("en_US", "nl_NL", "de_DE", "fr_FR")

# Name particles: they are parts of multi-word names ("van der Berg") and are
# handled as connectors by the runtime, never as names by themselves.
PARTICLES = {
    "van", "der", "den", "de", "del", "della", "di", "da", "das", "dos", "du", "des", "la", "le",
    "von", "vom", "zu", "zum", "ter", "ten", "het", "op", "in", "y", "e", "al", "el", "bin", "mac",
    "st", "saint", "sint", "sankt", "and",
}

# Words that are names in some locale but that OCR'd viewer screens, reports and
# UIs print as ordinary words. Judgement call: precision over recall -- a real
# "John Long" is still caught by the pair rule (known given name + capitalised word).
STOP_WORDS = set("""
may june april august will mark rose hall park field young ward bank page long white black
green gray grey brown red gold golden silver rich hope grace faith joy dawn summer autumn winter
spring star sun moon sky river lake wood woods hill hills stone rock rocks well wells bell bells
bush king queen prince duke lord knight bishop pope earl baron marshal sergeant major
chance bill bills art ray iris lens carina colon vena delta alpha beta gamma sigma omega
gain depth head chest left right lower upper front back side top bottom center centre middle
mean median mode max min level window width height length size scale zoom focus angle
image images series study scan view views frame frames slice slices axial sagittal coronal
liver kidney heart lung lungs brain bone bones spine neck knee hip hand foot arm leg eye ear
nose mouth skin blood vessel vein artery aorta thyroid carotid fetal fetus uterus ovary
breast pelvis abdomen stomach bowel gall bladder spleen pancreas
power rate flow speed time date day days week month year years hour hours minute second
north south east west street road lane avenue way close court place square bridge gate
church castle tower mill mills house home land lands moor marsh ford port haven
baker butler cook draper farmer fisher hunter mason miller
painter porter potter shepherd turner walker weaver
little small short tall large big strong sharp swift quick bright fair free good best
better love lovely dear sweet happy lucky noble gentle
new old first last next early late soon now then here there
day night light dark clear plain
over under above below inside outside near far
say says said see seen saw read write wrote made make makes
can could should would must shall might
man men woman women boy girl child children baby mother father son daughter
doctor nurse patient clinic hospital ward care health medical
law lord love may page paris london york jersey holland england france german french
english irish scott welsh wales dutch
case cases code codes data test tests note notes report reports result results
phase mass field fields line lines point points range ranges
doppler color colour harmonic pulse wave waves sound echo
mass fluid cyst stone stones
sum total count value values check
print save open close edit help tools file files menu exit next prev previous
auto manual normal standard default custom
body part parts soft hard fast slow
pitch dose kernel filter matrix
male female
echo vox dose unit units
man mann
kind kinder
mai mei maart mars juni juli juin juillet avril
roos wit zwart groen rood bruin klein groot lang kort jong oud
weiss weiß schwarz grün rot braun klein gross groß lang kurz jung alt
blanc noir vert rouge brun petit grand long court jeune vieux
lange langer




post pos posted
arts cross gene hood horn hunt laan oak ridge rush snow sole wel ware wise frank chase
galle leber bas pia porta nova mar sep
straat weg plein gracht kade dijk strasse
""".split())


def _provider(locale: str):
    try:
        return importlib.import_module(f"faker.providers.person.{locale}").Provider
    except ModuleNotFoundError:
        return None


def _names(value) -> list[str]:
    # Some providers hold weighted OrderedDicts (name -> frequency): take the keys.
    if isinstance(value, dict):
        return list(value.keys())
    return list(value)


def _tokens(entry: str) -> list[str]:
    """Split a multi-word entry ("Aelftrud van Wessex", "'s Gravensande") into name words."""
    out = []
    for raw in entry.replace("-", " ").replace("'", " ").replace("’", " ").split():
        word = fold(raw)
        if word.isalpha() and len(word) >= 3 and word not in PARTICLES:
            out.append(word)
    return out


def _lorem_words(locales=LOREM_LOCALES) -> set[str]:
    words: set[str] = set()
    for locale in locales:
        try:
            provider = importlib.import_module(f"faker.providers.lorem.{locale}").Provider
        except ModuleNotFoundError:
            continue
        words.update(fold(w) for w in getattr(provider, "word_list", ()))
    return words


def build() -> dict[str, bytes]:
    import faker

    given: set[str] = set()
    surnames: set[str] = set()
    used: list[str] = []
    for locale in LOCALES:
        provider = _provider(locale)
        if provider is None:
            continue
        used.append(locale)
        for attr in dir(provider):
            if attr.startswith("_"):
                continue
            value = getattr(provider, attr)
            if not isinstance(value, (tuple, list, dict)):
                continue
            if attr.startswith("first_names"):
                target = given
            elif attr == "last_names" or attr.endswith("_last_names"):
                # pl_PL keeps its real surnames in male_/female_/unisex_last_names.
                target = surnames
            else:
                continue
            for entry in _names(value):
                if isinstance(entry, str):
                    target.update(_tokens(entry))

    stop = {fold(w) for w in STOP_WORDS} | set(TECH_WORDS)
    # Given names only lose the English lorem words: the French/Dutch/German lists
    # would take "Pierre", "Claire", "François" -- names far more often than words
    # on an English-language viewer, and the pair rule needs a given name to fire.
    given_stop = stop | _lorem_words(("en_US",))
    surname_stop = stop | _lorem_words()
    dropped = (given & given_stop) | (surnames & surname_stop)
    given -= given_stop
    surnames -= surname_stop
    header = (f"# source: faker {faker.VERSION} person providers "
              f"({', '.join(used)}); class attributes first_names*, *last_names; "
              f"lowercase, accent-folded, >=3 letters, {len(dropped)} common/technical words removed; "
              f"generated by scripts/build_gazetteer.py\n")
    files = {}
    for name, words in (("given_names.txt.gz", given), ("surnames.txt.gz", surnames)):
        body = header + "".join(w + "\n" for w in sorted(words))
        buf = io.BytesIO()
        # mtime=0 and no file name: byte-identical output for identical input.
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(body.encode("utf-8"))
        files[name] = buf.getvalue()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed files differ from a fresh build")
    args = parser.parse_args()
    files = build()
    stale = [n for n, b in files.items() if not (DATA / n).exists() or (DATA / n).read_bytes() != b]
    if args.check:
        for n in stale:
            print(f"stale: {n}")
        return 1 if stale else 0
    DATA.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (DATA / name).write_bytes(blob)
        count = gzip.decompress(blob).decode().count("\n") - 1
        print(f"{name}: {count} entries, {len(blob)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
