"""The serving commands: ``gatedrec export``, ``recommend``, ``similar`` and ``serve``. Results go to stdout as a
table (titles where known) or, with ``--json``, as JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rich.table import Table

from gatedrec.commands.output import print_json, results
from gatedrec.commands.training import load_best_model
from gatedrec.errors import GatedRecError
from gatedrec.progress import console
from gatedrec.serving.artifact import export_run
from gatedrec.serving.catalog_info import data_encoders
from gatedrec.serving.recommender import Recommender


def export(run: Path, encoders: dict[str, str]) -> Path:
    """Rebuild a finished run's best model from its data folder and write its serving files."""
    config, dataset, model = load_best_model(run)
    return export_run(model, dataset, config.params, config.data.path, run,
                      data_encoders(config.data.path) | encoders)


def export_command(args) -> None:
    encoders = {"text": args.text_encoder, "visual": args.image_encoder}
    folder = export(Path(args.run), {name: value for name, value in encoders.items() if value})
    results.print(f"wrote {folder}")


def recommend(args) -> None:
    recommender = Recommender.load(args.run)
    k = args.k
    if args.user is not None:
        ranked = recommender.recommend(args.user, k, exclude_seen=not args.include_seen)
        explain = lambda items: recommender.explain_many(args.user, items)  # noqa: E731
        title = f"top {k} for user {args.user}"
    else:
        history = [item.strip() for item in args.history.split(",") if item.strip()]
        ranked = recommender.recommend_for_history(history, k, exclude_seen=not args.include_seen)
        explain = lambda items: recommender.explain_many_for_history(history, items)  # noqa: E731
        title = f"top {k} for a history of {len(history)} item(s)"
    explanations = dict(zip((item for item, _ in ranked), explain([item for item, _ in ranked]))) \
        if args.explain and ranked else {}
    if args.json:
        rows = [{"item": item, "score": score, "title": recommender.title_of(item),
                 **({"explanation": asdict(explanations[item])} if args.explain else {})} for item, score in ranked]
        print_json({"user": args.user, "items": rows})
        return
    results.print(ranked_table(recommender, ranked, title, explanations))


def similar(args) -> None:
    recommender = Recommender.load(args.run)
    ranked = recommender.similar_items(args.item, args.k)
    if args.json:
        rows = [{"item": item, "cosine": score, "title": recommender.title_of(item)} for item, score in ranked]
        print_json({"item": args.item, "items": rows})
        return
    results.print(ranked_table(recommender, ranked, f"items like {args.item} "
                              f"({recommender.title_of(args.item) or 'no title'})", {}, score_name="cosine"))


def ranked_table(recommender: Recommender, ranked, title: str, explanations: dict,
                 score_name: str = "score") -> Table:
    table = Table(title=title)
    for column in ("#", "item", "title", score_name):
        table.add_column(column, justify="right" if column in ("#", score_name) else "left")
    if explanations:
        table.add_column("shares")
        table.add_column("because you liked (contribution)")
    for rank, (item, score) in enumerate(ranked, start=1):
        row = [str(rank), item, recommender.title_of(item) or "", f"{score:.4f}"]
        if explanations:
            explanation = explanations[item]
            shares = explanation.shares or {}
            row.append(", ".join(f"{name} {share:.2f}" for name, share in shares.items()) or "-")
            row.append("; ".join(f"{recommender.title_of(liked) or liked} ({value:+.4f})"
                                 for liked, value in explanation.because[:3]))
        table.add_row(*row)
    return table


def serve(args) -> None:
    try:
        import uvicorn

        from gatedrec.serving.web import create_app
    except ImportError as error:
        raise GatedRecError(f"gatedrec serve needs the serve extra: pip install 'gatedrec[serve]' ({error})") from None
    recommender = Recommender.load(args.run, index=args.index)
    console.print(f"serving {args.run} ({recommender.manifest.model}, {len(recommender.user_ids):,} users, "
                  f"{recommender.n_items:,} items, {args.index} top-K) on http://{args.host}:{args.port}/")
    uvicorn.run(create_app(recommender), host=args.host, port=args.port, log_level="warning")
