"""A third template family, ``fresh``: agents written after the rules were settled, run as is.

Multi-step agents (population density from two searches and a division), a weather agent and
a RAG agent whose answer has two cited sentences. Their wording, tools and flaws differ from
the ``tune`` and ``test`` families, and no rule was changed after measuring them: their table is
the closest thing here to how the checks fare on text they were not shaped on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import lucidtrace as lt
from tests.checks.validation_agents import CITIES, Case, near_miss, unrelated


def density_agent(rng: random.Random, plant: str | None, name: str) -> None:
    """Population density: two searches and a division."""
    city = rng.choice(CITIES)
    population = rng.randint(80_000, 4_000_000)
    area = rng.randint(40, 900)
    density = population / area
    question = rng.choice(
        [f"What is the population density of {city}?", f"How densely populated is {city}?"]
    )
    with lt.span(name, kind="agent", input=question):
        lt.thought(f"To get the density I need population and area. First I'll look up {city}.")
        with lt.tool_call("lookup", {"q": f"{city} population"}) as call:
            call.set_result(f"{city} - population: {population:,} (municipal estimate).")
        with lt.tool_call("lookup", {"q": f"{city} area"}) as call:
            call.set_result(f"Total area of {city}: {area} km2.")
        if plant == "plan_action_mismatch":
            lt.thought(f"Now I'll divide {population} by {area} using the calculator.")
            with lt.tool_call("lookup", {"q": f"{city} population density"}) as call:
                call.set_result("No direct figure found.")
            lt.thought("Fine, I will compute it with the calculator then.")
        else:
            lt.thought(f"Now I'll divide {population} by {area} using the calculator.")
        with lt.tool_call("calculator", {"input": f"{population} / {area}"}) as call:
            call.set_result(round(density, 3))
        shown = round(density)
        if plant == "contradicted_number":
            shown = near_miss(rng, shown) if shown >= 100 else shown * 10
        stated_area = unrelated(rng, area) if plant == "phantom_observation" else area
        lt.answer(
            rng.choice(
                [
                    f"{city} has about {shown:,} inhabitants per km2 "
                    f"({population:,} people on {stated_area} km2).",
                    f"Roughly {shown:,} people per square kilometre live in {city}, which "
                    f"covers {stated_area} km2.",
                ]
            )
        )


def weather_agent(rng: random.Random, plant: str | None, name: str) -> None:
    """An umbrella question answered from a forecast tool."""
    city = rng.choice(CITIES)
    chance = rng.randint(60, 95)
    temp = rng.randint(4, 28)
    wet = rng.random() < 0.5
    forecast = (
        f"Tomorrow in {city}: rain likely ({chance}% chance of precipitation), {temp} C."
        if wet
        else f"Tomorrow in {city}: sunny and dry, {temp} C, no precipitation expected."
    )
    with lt.span(name, kind="agent", input=f"Do I need an umbrella in {city} tomorrow?"):
        lt.thought(f"I should check the weather forecast for {city}.")
        with lt.tool_call("get_forecast", {"city": city, "day": "tomorrow"}) as call:
            call.set_result(forecast)
        if plant == "phantom_observation":
            lt.thought(f"The forecast tool says it will be {unrelated(rng, temp * 10)} C at noon.")
        if plant == "ignored_evidence":
            answer = (
                f"No, it will stay dry in {city} tomorrow."
                if wet
                else f"Yes, rain is expected in {city} tomorrow, so take an umbrella."
            )
        elif wet:
            answer = f"Yes, take an umbrella: rain is likely ({chance}% chance)."
        else:
            answer = f"No umbrella needed: it should be sunny and dry, around {temp} C."
        lt.answer(answer)


def two_citation_agent(rng: random.Random, plant: str | None, name: str) -> None:
    """An answer of two sentences, each citing the document it comes from."""
    city = rng.choice(CITIES)
    founded = rng.randint(1100, 1850)
    bridges = rng.randint(12, 140)
    docs = [
        {"id": "wiki-1", "content": f"{city} was founded in {founded} as a trading post."},
        {"id": "wiki-2", "content": f"The city has {bridges} bridges over its canals."},
        {"id": "wiki-3", "content": f"The climate of {city} is oceanic with mild winters."},
    ]
    first, second = "wiki-1", "wiki-2"
    if plant == "fabricated_citation":
        second = rng.choice(["wiki-5", "wiki-9", "news-2"])
    elif plant == "unsupported_citation":
        first, second = "wiki-2", "wiki-1"
    with lt.span(name, kind="agent", input=f"Give me two facts about {city}."):
        lt.thought(f"Let me search the encyclopedia for {city}.")
        lt.retrieval(city, docs)
        lt.answer(
            f"{city} was founded in {founded} [{first}]. It has {bridges} bridges [{second}].",
            cites=[first, second],
        )


FRESH: dict[str, tuple[Callable[[random.Random, str | None, str], None], set[str]]] = {
    "density": (
        density_agent,
        {"contradicted_number", "phantom_observation", "plan_action_mismatch"},
    ),
    "weather": (weather_agent, {"ignored_evidence", "phantom_observation"}),
    "two_citations": (two_citation_agent, {"fabricated_citation", "unsupported_citation"}),
}


def record_fresh(*, seed: int, per_kind: int) -> list[Case]:
    """Record ``per_kind`` traces of each planted kind, each followed by a faithful control."""
    rng = random.Random(seed)
    cases: list[Case] = []
    kinds = sorted({kind for _, kinds in FRESH.values() for kind in kinds})
    for kind in kinds:
        options = [name for name, (_, supported) in FRESH.items() if kind in supported]
        for _ in range(per_kind):
            scenario = rng.choice(options)
            case = Case(f"fresh-{seed}-{len(cases)}", kind, scenario)
            FRESH[scenario][0](rng, kind, case.name)
            cases.append(case)
            control = Case(f"fresh-{seed}-{len(cases)}", "faithful", scenario)
            FRESH[scenario][0](rng, None, control.name)
            cases.append(control)
    return cases
