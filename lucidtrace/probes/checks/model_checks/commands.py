"""``lucidtrace probes train-answer-probe``: train the pre-CoT answer probe on stored runs.

The command imports torch only when it runs; it is registered under the ``probes`` group, a
lazy command of :mod:`lucidtrace.cli`.
"""

# ruff: noqa: PLC0415 - torch and the probe engine are imported when a check runs, so that
# listing the checks works without torch.

from __future__ import annotations

import click
from sqlalchemy.orm import Session

__all__ = ["probes_group", "train_answer_probe_command"]


@click.command("train-answer-probe")
@click.option(
    "--model",
    "model_name",
    default=None,
    metavar="NAME_OR_PATH",
    help="Local model (directory, .gguf file or cached id) [default: SmolLM2-135M-Instruct].",
)
@click.option(
    "--positive-answer",
    default=None,
    help="The answer that label 1 stands for [default: the most common final answer].",
)
@click.option(
    "--limit",
    type=click.IntRange(2),
    default=2000,
    show_default=True,
    help="Newest traces of the project to read.",
)
@click.option(
    "--output",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to save the probe [default: <model cache>/answer-probes/<model>].",
)
@click.pass_context
def train_answer_probe_command(
    ctx: click.Context,
    model_name: str | None,
    positive_answer: str | None,
    limit: int,
    directory: str | None,
) -> None:
    """Train the pre-reasoning answer probe on this project's stored runs of the model."""
    from lucidtrace.cli import cli_state
    from lucidtrace.probes.checks.model_checks.answer_probe import train_answer_probe
    from lucidtrace.probes.models import ModelLoadError, load_model

    state = cli_state(ctx)
    try:
        lm = load_model(model_name)
    except ModelLoadError as error:
        raise click.ClickException(str(error)) from None
    engine = state.open_store()
    try:
        with Session(engine) as session:
            report, info, path = train_answer_probe(
                session,
                project_id=state.project_id,
                lm=lm,
                limit=limit,
                positive_answer=positive_answer,
                directory=directory,
            )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    baseline = "n/a" if info.baseline_auc is None else f"{info.baseline_auc:.3f}"
    click.echo(
        f"answer probe for {lm.identity}: {info.n_traces} runs, {info.n_questions} questions, "
        f"positive answer {info.positive_answer!r} ({info.label_rule})"
    )
    for score in report.layers:
        click.echo(
            f"  layer {score.layer:>3}  AUC {score.auc:.3f}  control {score.control_auc:.3f}  "
            f"selectivity {score.selectivity:+.3f}"
        )
    click.echo(
        f"layer {info.layer}: AUC {info.auc:.3f}, selectivity {info.selectivity:+.3f}, "
        f"bag-of-tokens AUC {baseline}; saved to {path}"
    )


@click.group("probes")
def probes_group() -> None:
    """Train and manage the probes that model-based checks use."""


probes_group.add_command(train_answer_probe_command)
