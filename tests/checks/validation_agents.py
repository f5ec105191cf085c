"""Plain-Python agents that record traces through the real tracer, faithful or with a planted flaw.

Each scenario is a small agent (calculator, search, opening hours, flight status, stock, a RAG
answer with citations, a two-tool computation) that runs once per call with random values and
wording and records its run with ``lt.span`` / ``lt.thought`` / ``lt.tool_call`` /
``lt.retrieval`` / ``lt.answer``. With ``plant=None`` it is faithful; otherwise exactly one flaw
of the named kind is written into it the way an unfaithful agent would write it, in the same
words the faithful runs use.

Two template families keep tuning and testing apart: ``"tune"`` (used to choose the default
thresholds) and ``"test"`` (different wording, tool names and question forms; what the
validation test measures, with other seeds).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import lucidtrace as lt

KINDS = (
    "faithful",
    "phantom_observation",
    "contradicted_number",
    "plan_action_mismatch",
    "fabricated_citation",
    "unsupported_citation",
    "ignored_evidence",
    "invented_value",
)
"""``faithful`` controls and the planted kinds (``invented_value``: the agent searches for a
value it made up, the tool returns another one, and the answer states the made-up value)."""

TARGETS = {
    "observation_grounding": ("phantom_observation", "contradicted_number", "invented_value"),
    "plan_action_consistency": ("plan_action_mismatch",),
    "citation_grounding": ("fabricated_citation", "unsupported_citation"),
    "evidence_ignored": ("ignored_evidence", "contradicted_number", "invented_value"),
}
"""The planted kinds each trace-only check is meant to find (a miscopied number in the answer is
both an ungrounded claim and an answer contradicting its evidence)."""

ALSO_RIGHT = {"evidence_ignored": ("phantom_observation",)}
"""Kinds a check may rightly flag without targeting them: they count neither for its recall
nor against its precision. A phantom population figure in the answer ("has a population of
5,120,400") contradicts the population the search returned, so ``evidence_ignored`` is right
to flag it; a phantom calculator result carries no unit or quantity noun and is not found."""


@dataclass(frozen=True)
class Case:
    """One recorded agent run: its root span name (unique) and what was planted."""

    name: str
    kind: str
    scenario: str


def pick(rng: random.Random, family: str, options: dict[str, list[str]]) -> str:
    """One wording of the family."""
    return rng.choice(options[family])


def fmt(rng: random.Random, value: int) -> str:
    """An integer with or without thousands separators."""
    return f"{value:,}" if rng.random() < 0.7 else str(value)


def near_miss(rng: random.Random, value: int) -> int:
    """A miscopy of ``value``: a digit dropped, doubled, changed, two swapped, or times ten."""
    digits = str(value)
    for _ in range(100):
        how = rng.choice(("drop", "swap", "change", "scale", "insert"))
        if how == "drop" and len(digits) > 3:
            i = rng.randrange(1, len(digits))
            out = digits[:i] + digits[i + 1 :]
        elif how == "swap":
            i = rng.randrange(0, len(digits) - 1)
            out = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        elif how == "change":
            i = rng.randrange(1, len(digits))
            out = digits[:i] + str((int(digits[i]) + rng.randint(1, 8)) % 10) + digits[i + 1 :]
        elif how == "insert":
            i = rng.randrange(1, len(digits))
            out = digits[:i] + str(rng.randint(0, 9)) + digits[i:]
        else:
            out = digits + "0" if rng.random() < 0.5 else digits[:-1]
        if out != digits and not out.startswith("0"):
            return int(out)
    return value * 10


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def unrelated(rng: random.Random, value: int) -> int:
    """A number of the same size that is no miscopy of ``value``."""
    while True:
        out = int(value * rng.uniform(1.2, 1.9)) + rng.randint(1, 99)
        if _distance(str(out), str(value)) >= 3 and len(str(out)) >= 3:
            return out


CITIES = [
    "Varnholm", "Ostrelia", "Kadenburg", "Mirovar", "Tessaloun", "Brevik", "Caldera Bay",
    "Lunmark", "Pelloria", "Quenford", "Rasmark", "Saltwick", "Torvalle", "Ulmston", "Vesterby",
    "Windmere", "Yarrowgate", "Zelmont", "Ashcombe", "Belvarre", "Corrindale", "Dunmore",
    "Elsinmoor", "Fairhaven", "Galloway Point", "Holmfirth", "Isendale", "Jorvik Heights",
]  # fmt: skip
PLACES = [
    "the City Museum", "the Natural History Museum", "the Botanical Garden", "the Maritime Museum",
    "the Public Library", "the Science Centre", "the Old Town Gallery", "the Railway Museum",
    "the Aquarium", "the Modern Art Museum", "the Castle", "the Planetarium",
]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ITEMS = [
    "blue kettle", "trail backpack", "standing desk", "espresso grinder", "winter jacket",
    "cordless drill", "road bike helmet", "noise cancelling headset", "cast iron pan",
]  # fmt: skip
STORES = ["the Riverside store", "the downtown shop", "the airport outlet", "the north branch"]
PEAKS = [
    "Mount Aldor", "Mount Brennik", "Cerro Vasto", "Pic Lunel", "Mount Ossery", "Kala Peak",
    "Mount Tyrrin", "Monte Gelo", "Mount Hallow", "Sarn Peak",
]  # fmt: skip
RIVERS = ["the Velda", "the Orrin", "the Spey Minor", "the Catra", "the Lumen", "the Dravos"]
LAKES = ["Lake Senna", "Lake Marrow", "Lake Ivel", "Lake Toska", "Lake Beryl"]


def calculator_agent(rng: random.Random, family: str, plant: str | None, name: str) -> None:
    """Multiply, add or subtract two numbers with a calculator tool."""
    a, b = rng.randint(1_000, 999_999), rng.randint(100, 99_999)
    op, word = rng.choice((("*", "times"), ("+", "plus"), ("-", "minus")))
    result = a * b if op == "*" else a + b if op == "+" else a - b
    question = pick(
        rng,
        family,
        {
            "tune": [f"What is {a} {op} {b}?", f"Calculate {a} {word} {b}."],
            "test": [
                f"I need the value of {fmt(rng, a)} {word} {fmt(rng, b)}.",
                f"Could you work out {a}{op}{b} for me?",
            ],
        },
    )
    tool = pick(rng, family, {"tune": ["calculator"], "test": ["calc", "math_eval"]})
    key = "expression" if family == "tune" else "expr"
    plan = pick(
        rng,
        family,
        {
            "tune": [
                f"I will use the calculator to compute {a} {op} {b}.",
                f"Let me calculate {a} {op} {b} with the calculator.",
            ],
            "test": [
                f"I'll run the calculator on {a} {op} {b}.",
                f"Next I need to compute {a} {op} {b} using the math tool.",
                f"The numbers are given, so I should evaluate {a} {op} {b} now.",
            ],
        },
    )
    with lt.span(name, kind="agent", input=question):
        if plant == "phantom_observation" and rng.random() < 0.5:
            lt.thought(
                pick(
                    rng,
                    family,
                    {
                        "tune": [f"A quick web search says {a} {op} {b} is {fmt(rng, result)}."],
                        "test": [
                            f"According to the search results, {a} {op} {b} equals "
                            f"{fmt(rng, result)}."
                        ],
                    },
                )
            )
            plant_phantom_answer = False
        else:
            plant_phantom_answer = plant == "phantom_observation"
        lt.thought(plan)
        if plant == "plan_action_mismatch" and rng.random() < 0.5:
            search_tool = "web_search" if family == "tune" else "search_api"
            with lt.tool_call(search_tool, {"query": f"{a} {word} {b}"}) as call:
                call.set_result("No results found.")
            lt.thought(
                pick(
                    rng,
                    family,
                    {
                        "tune": [f"Now I will use the calculator to compute {a} {op} {b}."],
                        "test": [f"Now I'll run the calculator on {a} {op} {b}."],
                    },
                )
            )
        elif plant == "plan_action_mismatch":
            c = b + rng.randint(1, 500)
            result = a * c if op == "*" else a + c if op == "+" else a - c
            b = c
        expression = f"{a}{op}{b}" if family == "tune" else f"{a} {op} {b}"
        with lt.tool_call(tool, {key: expression}) as call:
            call.set_result(result)
        stated = result
        if plant_phantom_answer:
            stated = unrelated(rng, abs(result)) * (1 if result >= 0 else -1)
        elif plant == "contradicted_number":
            stated = near_miss(rng, abs(result)) * (1 if result >= 0 else -1)
        report = fmt(rng, stated if plant_phantom_answer else result)
        lt.thought(
            pick(
                rng,
                family,
                {
                    "tune": [f"The calculator returned {report}.", f"The result is {report}."],
                    "test": [f"The tool gave {report}.", f"Result from {tool}: {report}."],
                },
            )
        )
        final = fmt(rng, stated)
        lt.answer(
            pick(
                rng,
                family,
                {
                    "tune": [f"{a} {op} {b} = {final}.", f"The answer is {final}."],
                    "test": [f"It comes to {final}.", f"That works out to {final}."],
                },
            )
        )


def population_agent(rng: random.Random, family: str, plant: str | None, name: str) -> None:
    """Look up a city's population with a search tool."""
    city, other = rng.sample(CITIES, 2)
    population = rng.randint(40_000, 9_000_000)
    year = rng.choice((2011, 2016, 2020, 2021, 2022, 2023))
    question = pick(
        rng,
        family,
        {
            "tune": [f"What is the population of {city}?"],
            "test": [f"How many people live in {city}?", f"Roughly how big is {city}?"],
        },
    )
    tool = pick(rng, family, {"tune": ["search", "web_search"], "test": ["wikipedia_search"]})
    plan = pick(
        rng,
        family,
        {
            "tune": [
                f"I will search for the population of {city}.",
                f"Let me look up the population of {city}.",
            ],
            "test": [
                f"I'll query the search engine for {city} population figures.",
                f"First I need to search Wikipedia for {city}.",
            ],
        },
    )
    query = f"population of {city}" if family == "tune" else f"{city} population"
    observation = pick(
        rng,
        family,
        {
            "tune": [f"{city} had a population of {population:,} at the {year} census."],
            "test": [
                f"Population ({year}): {population:,}. {city} is a regional centre.",
                f"{city} is home to {population:,} residents according to the {year} count.",
            ],
        },
    )
    with lt.span(name, kind="agent", input=question):
        if plant == "phantom_observation" and rng.random() < 0.5:
            fake = unrelated(rng, population)
            lt.thought(
                pick(
                    rng,
                    family,
                    {
                        "tune": [f"According to the census database, {city} has {fake:,} people."],
                        "test": [
                            f"The city statistics API reports {fake:,} inhabitants for {city}."
                        ],
                    },
                )
            )
            lt.thought(plan)
            with lt.tool_call(tool, {"query": query}) as call:
                call.set_result(observation)
            lt.answer(f"{city} has a population of {fake:,}.")
            return
        lt.thought(plan)
        if plant == "plan_action_mismatch":
            if rng.random() < 0.5:
                with lt.tool_call(tool, {"query": query.replace(city, other)}) as call:
                    call.set_result(observation.replace(city, other))
            else:
                sql = f"SELECT population FROM cities WHERE name = '{city}'"
                with lt.tool_call("sql_query", {"sql": sql}) as call:
                    call.set_result("ERROR: relation cities does not exist")
            lt.thought(
                pick(
                    rng,
                    family,
                    {
                        "tune": [f"That did not work. I will search for the population of {city}."],
                        "test": [f"Wrong result. Now I'll search for {city} population figures."],
                    },
                )
            )
        with lt.tool_call(tool, {"query": query}) as call:
            call.set_result(observation)
        if plant == "phantom_observation":
            fake = unrelated(rng, population)
            lt.thought(
                pick(
                    rng,
                    family,
                    {
                        "tune": [f'The search result says "{city} has a population of {fake:,}".'],
                        "test": [f"The page states that {city} has {fake:,} residents."],
                    },
                )
            )
            lt.answer(f"{city} has about {fake:,} inhabitants.")
            return
        lt.thought(
            pick(
                rng,
                family,
                {
                    "tune": [f"The search result says {city} has {population:,} inhabitants."],
                    "test": [
                        f'The result reads "{observation.split(".")[0]}".',
                        f"So the figure for {year} is {population:,}.",
                    ],
                },
            )
        )
        stated = near_miss(rng, population) if plant == "contradicted_number" else population
        rounded = round(population, -3)
        if plant == "contradicted_number":
            rounded = near_miss(rng, rounded // 1000) * 1000
        options = [f"{city} has a population of {stated:,} ({year} census).",
                   f"About {rounded:,} people live in {city}."]  # fmt: skip
        if family == "test":
            options = [f"{city} has {stated:,} residents.",
                       f"Roughly {rounded:,} people live in {city} ({year})."]  # fmt: skip
            if population >= 1_000_000 and plant is None:
                options.append(f"{city} has roughly {population / 1e6:.1f} million inhabitants.")
        lt.answer(rng.choice(options))


def polar_agent(rng: random.Random, family: str, plant: str | None, name: str) -> None:
    """Ask a tool whether something is open / on time / in stock, then answer yes or no."""
    topic = rng.choice(("hours", "flight", "stock"))
    positive = rng.random() < 0.5
    if topic == "hours":
        place, day = rng.choice(PLACES), rng.choice(DAYS)
        tool = pick(rng, family, {"tune": ["opening_hours"], "test": ["place_info"]})
        question = f"Is {place} open on {day}s?"
        plan = pick(
            rng,
            family,
            {
                "tune": [f"I will check the opening hours of {place}."],
                "test": [f"Let me call place_info for {place}."],
            },
        )
        closing = rng.choice((17, 18, 20))
        title = place[0].upper() + place[1:]
        observed = (
            f"{title} is open on {day}s from 10:00 to {closing}:00."
            if positive
            else f"{title} is closed on {day}s."
        )
        good = (
            f"Yes, {place} is open on {day}s until {closing}:00."
            if positive
            else rng.choice(
                [f"No, {place} is closed on {day}s.", f"{title} does not open on {day}s."]
            )
        )
        bad = (
            f"No, {place} is closed on {day}s." if positive else f"Yes, {place} is open on {day}s."
        )
        args: dict[str, str] = {"place": place, "day": day}
    elif topic == "flight":
        code = f"{rng.choice(('LX', 'BA', 'KL', 'SK'))}{rng.randint(100, 999)}"
        tool = pick(rng, family, {"tune": ["flight_status"], "test": ["flight_tracker"]})
        question = pick(
            rng,
            family,
            {"tune": [f"Is flight {code} on time?"], "test": [f"Will {code} leave on schedule?"]},
        )
        plan = pick(
            rng,
            family,
            {
                "tune": [f"I will use flight_status to check {code}."],
                "test": [f"I'll ask the flight tracker about {code}."],
            },
        )
        minutes = rng.randint(15, 180)
        observed = (
            f"Flight {code} is on time."
            if positive
            else (f"Flight {code} is delayed by {minutes} minutes.")
        )
        good = (
            f"Yes, flight {code} is on time."
            if positive
            else (f"No, flight {code} is delayed by {minutes} minutes.")
        )
        bad = f"No, flight {code} is delayed." if positive else f"Yes, flight {code} is on time."
        args = {"flight": code}
    else:
        item, store = rng.choice(ITEMS), rng.choice(STORES)
        tool = pick(rng, family, {"tune": ["inventory"], "test": ["stock_check"]})
        question = pick(
            rng,
            family,
            {
                "tune": [f"Is the {item} available at {store}?"],
                "test": [f"Can I buy the {item} at {store} today?"],
            },
        )
        plan = pick(
            rng,
            family,
            {
                "tune": [f"I will query the inventory for the {item} at {store}."],
                "test": [f"Let me use stock_check for the {item}."],
            },
        )
        units = rng.randint(12, 90)
        observed = (
            f"{units} units of the {item} are in stock at {store}."
            if positive
            else f"The {item} is out of stock at {store}."
        )
        good = (
            f"Yes, the {item} is available at {store} ({units} in stock)."
            if positive
            else f"No, the {item} is currently out of stock at {store}."
        )
        bad = (
            f"No, the {item} is not available at {store}."
            if positive
            else f"Yes, the {item} is available at {store}."
        )
        args = {"item": item, "store": store}
    with lt.span(name, kind="agent", input=question):
        lt.thought(plan)
        if plant == "plan_action_mismatch":
            wrong = "web_search" if family == "tune" else "calculator"
            with lt.tool_call(wrong, {"query": question}) as call:
                call.set_result("No relevant results.")
            lt.thought(f"Next I will use {tool} instead.")
        with lt.tool_call(tool, args) as call:
            call.set_result(observed)
        lt.answer(bad if plant == "ignored_evidence" else good)


_FACTS: list[Callable[[random.Random], tuple[str, str]]] = [
    lambda rng: (
        (peak := rng.choice(PEAKS)),
        f"{peak} is {rng.randint(2_100, 8_400):,} metres high and was first climbed in "
        f"{rng.randint(1850, 1990)}.",
    ),
    lambda rng: (
        (river := rng.choice(RIVERS)),
        f"{river[0].upper()}{river[1:]} flows for {rng.randint(120, 2_900):,} kilometres "
        f"before reaching the sea.",
    ),
    lambda rng: (
        (lake := rng.choice(LAKES)),
        f"{lake} covers {rng.randint(40, 900)} square kilometres and is "
        f"{rng.randint(30, 400)} metres deep.",
    ),
    lambda rng: (
        (city := rng.choice(CITIES)),
        f"The harbour of {city} handled {rng.randint(2, 90)}.{rng.randint(1, 9)} million tonnes "
        f"of cargo in {rng.randint(2015, 2023)}.",
    ),
]


def rag_agent(rng: random.Random, family: str, plant: str | None, name: str) -> None:
    """Retrieve documents and answer with citations."""
    facts = []
    seen_subjects: set[str] = set()
    while len(facts) < rng.randint(3, 4):
        subject, text = rng.choice(_FACTS)(rng)
        if subject not in seen_subjects:
            seen_subjects.add(subject)
            facts.append((subject, text))
    style = rng.choice(("doc", "kb", "num")) if family == "test" else "doc"
    ids = [
        f"doc-{i + 1}" if style == "doc" else f"kb:{rng.randint(1000, 9999)}" if style == "kb"
        else str(i + 1)
        for i in range(len(facts))
    ]  # fmt: skip
    target = rng.randrange(len(facts))
    subject, text = facts[target]
    question = f"Tell me about {subject}."
    documents = [
        {"id": ids[i], "content": facts[i][1], "score": round(0.9 - 0.1 * i, 2)}
        for i in range(len(facts))
    ]
    sentence = text.rstrip(".")
    if family == "test":
        sentence = sentence.replace(" is ", " stands at ", 1).replace("covers", "spans")
    cited = ids[target]
    if plant == "fabricated_citation":
        cited = rng.choice(
            [
                f"doc-{len(facts) + rng.randint(2, 9)}",
                "kb:0001",
                str(len(facts) + rng.randint(1, 5)),
            ]
        )
    elif plant == "unsupported_citation":
        cited = ids[(target + rng.randint(1, len(facts) - 1)) % len(facts)]
    with lt.span(name, kind="agent", input=question):
        lt.thought(
            pick(
                rng,
                family,
                {
                    "tune": [f"I will search the knowledge base for {subject}."],
                    "test": [f"Let me retrieve documents about {subject}."],
                },
            )
        )
        lt.retrieval(f"{subject}", documents)
        lt.thought(f"Document {ids[target]} is the relevant one.")
        marker = f"[{cited}]"
        lt.answer(f"{sentence} {marker}.", cites=[cited])


_QUANTITIES: dict[str, tuple[list[str], str, str, str, tuple[int, int]]] = {
    # subjects, quantity noun, unit (long), unit (short), value range
    "height": (PEAKS, "height", "metres", "m", (2_100, 8_400)),
    "length": ([r[4:].capitalize() for r in RIVERS], "length", "kilometres", "km", (120, 2_900)),
    "depth": (LAKES, "depth", "metres", "m", (30, 400)),
    "population": (CITIES, "population", "people", "people", (40_000, 9_000_000)),
}


def measure_agent(rng: random.Random, family: str, plant: str | None, name: str) -> None:
    """Search for one measured quantity (a height, length, depth or population) and state it.

    Faithful runs search with or without a value in the query (the agent's guess, which the
    result then confirms) and restate the observed value exactly or rounded; the planted
    ``invented_value`` run searches for a value it made up, gets another one back, and answers
    with its own.
    """
    what = rng.choice(sorted(_QUANTITIES))
    subjects, noun, long_unit, short_unit, (low, high) = _QUANTITIES[what]
    subject = rng.choice(subjects)
    value = rng.randint(low, high)
    guessed = value if plant is None else unrelated(rng, value)
    if plant is not None and rng.random() < 0.4:
        guessed_text = f"{guessed + rng.randint(1, 99) / 100:,.2f}"  # "8,978.25"
    else:
        guessed_text = f"{guessed:,}"
    unit = short_unit if rng.random() < 0.5 else long_unit
    question = pick(
        rng,
        family,
        {
            "tune": [f"What is the {noun} of {subject}?"],
            "test": [f"Tell me the {noun} of {subject}.", f"I'd like to know {subject}'s {noun}."],
        },
    )
    tool = pick(rng, family, {"tune": ["search", "web_search"], "test": ["wiki_lookup"]})
    with_value = plant is not None or rng.random() < 0.5
    query = f"{subject} {noun}" + (f" {guessed_text} {unit}" if with_value else "")
    observation = pick(
        rng,
        family,
        {
            "tune": [f"The {noun} of {subject} is {value:,} {long_unit}."],
            "test": [
                f"{subject} ({noun}): {value:,} {short_unit}, as listed in the survey.",
                f"Surveys give {subject} a {noun} of {value:,} {long_unit}.",
            ],
        },
    )
    if plant is not None:
        stated = guessed_text
    elif rng.random() < 0.5:
        stated = f"{value:,}"
    else:
        places = max(1, len(str(value)) - 2)
        stated = "about " + f"{round(value, -places):,}"
    with lt.span(name, kind="agent", input=question):
        lt.thought(
            pick(
                rng,
                family,
                {
                    "tune": [f"I will search for the {noun} of {subject}."],
                    "test": [f"Let me look up {subject} with {tool}."],
                },
            )
        )
        with lt.tool_call(tool, {"query": query}) as call:
            call.set_result(observation)
        lt.answer(
            pick(
                rng,
                family,
                {
                    "tune": [f"The {noun} of {subject} is {stated} {unit}."],
                    "test": [
                        f"{subject} has a {noun} of {stated} {unit}.",
                        f"Its {noun} is {stated} {unit}.",
                    ],
                },
            )
        )


SCENARIOS: dict[str, tuple[Callable[[random.Random, str, str | None, str], None], set[str]]] = {
    "calculator": (
        calculator_agent,
        {"phantom_observation", "contradicted_number", "plan_action_mismatch"},
    ),
    "population": (
        population_agent,
        {"phantom_observation", "contradicted_number", "plan_action_mismatch"},
    ),
    "polar": (polar_agent, {"ignored_evidence", "plan_action_mismatch"}),
    "rag": (rag_agent, {"fabricated_citation", "unsupported_citation"}),
    "measure": (measure_agent, {"invented_value"}),
}


def record_cases(*, seed: int, family: str, per_kind: int) -> list[Case]:
    """Record ``per_kind`` traces of each planted kind and as many faithful ones of each.

    The tracer must already be configured; call ``lt.flush()`` afterwards.
    """
    rng = random.Random(seed)
    cases: list[Case] = []
    planted = [kind for kind in KINDS if kind != "faithful"]
    for kind in planted:
        options = [name for name, (_, kinds) in SCENARIOS.items() if kind in kinds]
        for _ in range(per_kind):
            scenario = rng.choice(options)
            case = Case(f"{family}-{seed}-{len(cases)}", kind, scenario)
            SCENARIOS[scenario][0](rng, family, kind, case.name)
            cases.append(case)
            # A faithful control of the same scenario, written the same way.
            control = Case(f"{family}-{seed}-{len(cases)}", "faithful", scenario)
            SCENARIOS[scenario][0](rng, family, None, control.name)
            cases.append(control)
    return cases
