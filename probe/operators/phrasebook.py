"""A curated phrasebook: common English question templates in Spanish, French and German.

The ``translate`` operator (``probe.operators.encoding``) needs a translation step,
and no offline translation model is available to the tool, so this is a small
hand-written dictionary instead: each template is an English question with slots
and its rendering in each language, written for the grammar of that sentence (a
word-by-word rendering gets gender and case wrong: "how many legs" is "cuántas
patas" but "how many teeth" is "cuántos dientes"). A slot takes

- ``{x}``: a name (capitalised words, joined by lower-case particles such as "of" or
  "and"), a number or a protected span (a ``{{placeholder}}`` or quoted text), left
  exactly as written, so "France" stays "France" in every language;
- ``{y}``: one of those, or a noun phrase from ``SUBJECTS`` (with its article);
- ``{n}``: a counted noun from ``HOW_MANY`` ("legs" -> "Cuántas patas").

A question that matches no template, or whose slot holds anything else, has no
translation (``translate`` returns ``None``): a half-translated question would mix
languages, and the meaning check could not vouch for it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

from probe.operators.spans import PROTECTED

Language = Literal["es", "fr", "de"]
LANGUAGES: tuple[Language, ...] = ("es", "fr", "de")

# English wordings (case-insensitive, whitespace-tolerant) -> the rendering per language.
TEMPLATES: tuple[tuple[tuple[str, ...], dict[str, str]], ...] = (
    (("what is the capital of {x}?", "what's the capital of {x}?",
      "which city is the capital of {x}?", "what city is the capital of {x}?",
      "what is the capital city of {x}?"),
     {"es": "¿Cuál es la capital de {x}?", "fr": "Quelle est la capitale de {x} ?",
      "de": "Was ist die Hauptstadt von {x}?"}),
    (("name the capital of {x}.", "tell me the capital of {x}."),
     {"es": "Dime la capital de {x}.", "fr": "Donne-moi la capitale de {x}.",
      "de": "Nenne mir die Hauptstadt von {x}."}),
    (("what is the largest city in {x}?", "which city is the largest in {x}?",
      "which is the largest city in {x}?", "what is the biggest city in {x}?"),
     {"es": "¿Cuál es la ciudad más grande de {x}?",
      "fr": "Quelle est la plus grande ville de {x} ?",
      "de": "Was ist die größte Stadt in {x}?"}),
    (("what is the population of {x}?",),
     {"es": "¿Cuál es la población de {x}?", "fr": "Quelle est la population de {x} ?",
      "de": "Wie hoch ist die Einwohnerzahl von {x}?"}),
    (("what is the currency of {x}?", "what currency does {x} use?"),
     {"es": "¿Cuál es la moneda de {x}?", "fr": "Quelle est la monnaie de {x} ?",
      "de": "Was ist die Währung von {x}?"}),
    (("what is the official language of {x}?",),
     {"es": "¿Cuál es el idioma oficial de {x}?",
      "fr": "Quelle est la langue officielle de {x} ?",
      "de": "Was ist die Amtssprache von {x}?"}),
    (("who wrote {x}?",),
     {"es": "¿Quién escribió {x}?", "fr": "Qui a écrit {x} ?", "de": "Wer hat {x} geschrieben?"}),
    (("who painted {x}?",),
     {"es": "¿Quién pintó {x}?", "fr": "Qui a peint {x} ?", "de": "Wer hat {x} gemalt?"}),
    (("who composed {x}?",),
     {"es": "¿Quién compuso {x}?", "fr": "Qui a composé {x} ?",
      "de": "Wer hat {x} komponiert?"}),
    (("who founded {x}?",),
     {"es": "¿Quién fundó {x}?", "fr": "Qui a fondé {x} ?", "de": "Wer hat {x} gegründet?"}),
    (("who is {x}?",), {"es": "¿Quién es {x}?", "fr": "Qui est {x} ?", "de": "Wer ist {x}?"}),
    (("who was {x}?",), {"es": "¿Quién fue {x}?", "fr": "Qui était {x} ?", "de": "Wer war {x}?"}),
    (("where is {x}?",), {"es": "¿Dónde está {x}?", "fr": "Où se trouve {x} ?",
                          "de": "Wo ist {x}?"}),
    (("when was {x} born?",),
     {"es": "¿Cuándo nació {x}?", "fr": "Quelle est la date de naissance de {x} ?",
      "de": "Wann wurde {x} geboren?"}),
    (("when did {x} die?",),
     {"es": "¿Cuándo murió {x}?", "fr": "Quelle est la date de décès de {x} ?",
      "de": "Wann ist {x} gestorben?"}),
    (("how many {n} does {y} have?",),
     {"es": "¿{n} tiene {y}?", "fr": "{n} a {y} ?", "de": "{n} hat {y}?"}),
    (("translate {x} into {x2}, please.", "please translate {x} into {x2}.",
      "translate {x} into {x2}.", "translate {x} to {x2}."),
     {"es": "Traduce {x} al idioma {x2}, por favor.",
      "fr": "Traduis {x} dans la langue {x2}, s'il te plaît.",
      "de": "Übersetze bitte {x} in die Sprache {x2}."}),
)

# Counted nouns, as the opening of a "how many" question in each language.
HOW_MANY: dict[str, dict[str, str]] = {
    "legs": {"es": "Cuántas patas", "fr": "Combien de pattes", "de": "Wie viele Beine"},
    "wheels": {"es": "Cuántas ruedas", "fr": "Combien de roues", "de": "Wie viele Räder"},
    "sides": {"es": "Cuántos lados", "fr": "Combien de côtés", "de": "Wie viele Seiten"},
    "strings": {"es": "Cuántas cuerdas", "fr": "Combien de cordes", "de": "Wie viele Saiten"},
    "keys": {"es": "Cuántas teclas", "fr": "Combien de touches", "de": "Wie viele Tasten"},
    "hearts": {"es": "Cuántos corazones", "fr": "Combien de cœurs", "de": "Wie viele Herzen"},
    "teeth": {"es": "Cuántos dientes", "fr": "Combien de dents", "de": "Wie viele Zähne"},
    "bones": {"es": "Cuántos huesos", "fr": "Combien d'os", "de": "Wie viele Knochen"},
    "players": {"es": "Cuántos jugadores", "fr": "Combien de joueurs",
                "de": "Wie viele Spieler"},
    "days": {"es": "Cuántos días", "fr": "Combien de jours", "de": "Wie viele Tage"},
    "moons": {"es": "Cuántas lunas", "fr": "Combien de lunes", "de": "Wie viele Monde"},
    "planets": {"es": "Cuántos planetas", "fr": "Combien de planètes",
                "de": "Wie viele Planeten"},
}

# Noun phrases as the subject of a sentence (nominative), with their article.
SUBJECTS: dict[str, dict[str, str]] = {
    "a spider": {"es": "una araña", "fr": "une araignée", "de": "eine Spinne"},
    "an insect": {"es": "un insecto", "fr": "un insecte", "de": "ein Insekt"},
    "a dog": {"es": "un perro", "fr": "un chien", "de": "ein Hund"},
    "a cat": {"es": "un gato", "fr": "un chat", "de": "eine Katze"},
    "an octopus": {"es": "un pulpo", "fr": "une pieuvre", "de": "ein Oktopus"},
    "a car": {"es": "un coche", "fr": "une voiture", "de": "ein Auto"},
    "a bicycle": {"es": "una bicicleta", "fr": "un vélo", "de": "ein Fahrrad"},
    "a triangle": {"es": "un triángulo", "fr": "un triangle", "de": "ein Dreieck"},
    "a square": {"es": "un cuadrado", "fr": "un carré", "de": "ein Quadrat"},
    "a hexagon": {"es": "un hexágono", "fr": "un hexagone", "de": "ein Sechseck"},
    "a violin": {"es": "un violín", "fr": "un violon", "de": "eine Geige"},
    "a guitar": {"es": "una guitarra", "fr": "une guitare", "de": "eine Gitarre"},
    "a piano": {"es": "un piano", "fr": "un piano", "de": "ein Klavier"},
    "a week": {"es": "una semana", "fr": "une semaine", "de": "eine Woche"},
    "a year": {"es": "un año", "fr": "une année", "de": "ein Jahr"},
    "a leap year": {"es": "un año bisiesto", "fr": "une année bissextile",
                    "de": "ein Schaltjahr"},
    "an adult": {"es": "un adulto", "fr": "un adulte", "de": "ein Erwachsener"},
    "a football team": {"es": "un equipo de fútbol", "fr": "une équipe de football",
                        "de": "eine Fußballmannschaft"},
    "the human body": {"es": "el cuerpo humano", "fr": "le corps humain",
                       "de": "der menschliche Körper"},
    "the solar system": {"es": "el sistema solar", "fr": "le système solaire",
                         "de": "das Sonnensystem"},
    "the Earth": {"es": "la Tierra", "fr": "la Terre", "de": "die Erde"},
}

# Lower-case words a name may have between its capitalised ones ("Bosnia and Herzegovina").
_PARTICLES = frozenset({"of", "and", "the", "de", "da", "del", "la", "le", "du", "von", "van"})
_NAME_WORD = re.compile(r"[^\W_][\w'\u2019.-]*")
_SLOT = re.compile(r"\{(x2|x|y|n)\}")


def _is_name(text: str) -> bool:
    words = text.split()
    if not words or not all(_NAME_WORD.fullmatch(w) for w in words):
        return False

    def capital(word: str) -> bool:
        return word[0].isupper() or word[0].isdigit()

    return (capital(words[0]) and capital(words[-1])
            and all(capital(w) or w in _PARTICLES for w in words))


def _fill(kind: str, value: str, lang: str) -> str | None:
    """The rendering of one slot's ``value`` in ``lang``; ``None`` when it has none."""
    if kind == "n":
        return HOW_MANY.get(value.lower(), {}).get(lang)
    if PROTECTED.fullmatch(value) or _is_name(value):
        return value  # names, numbers and protected spans are never translated
    if kind == "y":
        found = {k.lower(): v for k, v in SUBJECTS.items()}.get(value.lower())
        return None if found is None else found[lang]
    return None


@cache
def _patterns() -> tuple[tuple[re.Pattern[str], dict[str, str]], ...]:
    """Each English wording compiled: literal text (any run of spaces matching any
    whitespace) with a lazy named group per slot."""
    out = []
    for wordings, renderings in TEMPLATES:
        for wording in wordings:
            parts = _SLOT.split(wording)  # literal, slot name, literal, ...
            regex = "".join(
                rf"(?P<{p}>.+?)" if i % 2 else r"\s+".join(re.escape(w) for w in p.split(" "))
                for i, p in enumerate(parts))
            out.append((re.compile(regex, re.IGNORECASE | re.DOTALL), renderings))
    return tuple(out)


def translate(question: str, lang: str) -> str | None:
    """``question`` rendered in ``lang`` (``es``, ``fr`` or ``de``), or ``None`` when no
    template matches it or a slot holds something the phrasebook cannot render.

    >>> translate("What is the capital of France?", "es")
    '¿Cuál es la capital de France?'
    >>> translate("How do I pick a lock?", "fr") is None
    True
    """
    text = question.strip()
    for pattern, renderings in _patterns():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        filled = {k: _fill(k.rstrip("2"), v.strip(), lang) for k, v in match.groupdict().items()}
        values = {k: v for k, v in filled.items() if v is not None}
        if len(values) == len(filled):
            # format() reads braces in the rendering only: a slot's "{{x}}" stays as it is.
            return renderings[lang].format(**values)
    return None
