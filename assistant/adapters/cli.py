"""``segment-assistant`` (also ``python -m assistant``): the command-line adapter.

Domain errors (AssistantError) become one line on stderr and exit code 2, here and only here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Literal, NoReturn

from assistant.core.errors import AssistantError
from assistant.core.fields import FIELDS

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, default=None,
                   help="model folder (default: $SEGMENT_ASSISTANT_MODEL_DIR, else the shipped models/)")
    _knowledge(p)


def _knowledge(p: argparse.ArgumentParser) -> None:
    p.add_argument("--knowledge-dir", type=Path, default=None,
                   help="knowledge base folder (default: $SEGMENT_ASSISTANT_KNOWLEDGE_DIR, else the shipped "
                        "knowledge/)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segment-assistant", description="Customer Segment Assistant")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train the model on a marketing_campaign file")
    p.add_argument("--data", type=Path, required=True, help="the customer file (tab, semicolon or comma separated)")
    p.add_argument("--k", default="4", help="number of segments, or 'auto' (default 4)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", "--model-dir", dest="out", type=Path, default=None,
                   help="output folder (default: the checkout's models/; when installed, a user folder it names); "
                        "--model-dir is the same, as for every command")
    p.add_argument("--bootstrap", type=int, default=20, help="bootstrap refits per k for stability (>= 20)")
    p.add_argument("--response-repeats", type=int, default=20, metavar="N",
                   help="other holdout splits the response models' training is repeated on, for the spread of "
                        "their holdout figures in the model card (0 skips; default 20, about 2 s each)")
    _knowledge(p)

    p = sub.add_parser("predict", help="segment one customer")
    _common(p)
    for f in FIELDS:
        p.add_argument(f.cli_flag, dest=f.name, required=True, metavar=f.unit.upper().replace("/", "_") or "N",
                       help=f"{f.label} ({f.unit}; {f.minimum:g} to {f.maximum:g})")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")

    p = sub.add_parser("segments", help="the segments with sizes and averages")
    _common(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("model-card", help="print the model card")
    _common(p)

    p = sub.add_parser("chat", help="talk to the assistant in the terminal")
    _common(p)
    p.add_argument("--json", action="store_true", help="one message per stdin line, one JSON object per line out")

    p = sub.add_parser("serve", help="start the web app (chat UI and REST API)")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="create a public Gradio share link (needs auth)")
    p.add_argument("--share-without-auth", action="store_true", help="allow --share without --auth")
    p.add_argument("--auth", default=None, help="USER:PASS[,USER2:PASS2] (or --auth-file, or $SEGMENT_ASSISTANT_AUTH)")
    p.add_argument("--auth-file", default=None, help="file holding USER:PASS lines")
    p.add_argument("--root-path", default="", help="sub-path when served behind a reverse proxy, e.g. /segments")
    p.add_argument("--allow-origin", action="append", default=[],
                   help="origin allowed to call the API / embed (repeatable)")
    p.add_argument("--max-upload-mb", type=float, default=50.0)

    p = sub.add_parser("score", help="score a customer file (CSV or Parquet)")
    _common(p)
    p.add_argument("input", help="input file (or a directory / glob with --engine dask)")
    p.add_argument("-o", "--output", required=True, help="output file (a folder with --engine dask)")
    p.add_argument("--format", choices=["csv", "parquet"], default=None, help="output format (default: from -o)")
    p.add_argument("--chunksize", type=int, default=200_000)
    p.add_argument("--engine", choices=["local", "dask"], default="local")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument("--top", type=int, default=None, metavar="N",
                   help="also write the N customers most likely to answer the next campaign, ranked "
                        "(to --top-output, default OUTPUT-topN beside -o)")
    p.add_argument("--segment", default=None, metavar="KEY", help="with --top: only customers of this segment")
    p.add_argument("--top-output", default=None, help="where --top writes the ranked contact list")

    p = sub.add_parser("report", help="write a self-contained HTML report")
    _common(p)
    p.add_argument("--data", type=Path, default=None, help="the customer file (default: model card only)")
    p.add_argument("-o", "--output", type=Path, required=True)
    return parser


def _load_service(args):
    from assistant.model.segmentation import SegmentationService

    return SegmentationService.load(args.model_dir, knowledge_dir=getattr(args, "knowledge_dir", None))


def _progress(step: int, total: int, message: str) -> None:
    width = 30
    done = int(width * step / total) if total else width
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {step}/{total} {message[:60]:<60}")
    if step >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_train(args) -> int:
    from assistant.core.knowledge import load_knowledge
    from assistant.core.paths import default_model_dir, training_output_dir
    from assistant.model.data import load_customers
    from assistant.model.training import train, write_model

    k: int | Literal["auto"] = "auto"
    if args.k != "auto":
        try:
            k = int(args.k)
        except ValueError:
            raise AssistantError(f"--k={args.k!r} is not a number or 'auto'") from None
        if not 2 <= k <= 10:
            raise AssistantError(f"--k={k} is outside the allowed range 2 to 10")
    if args.bootstrap < 20:
        raise AssistantError(f"--bootstrap={args.bootstrap} is below the minimum of 20")
    if args.response_repeats < 0:
        raise AssistantError(f"--response-repeats={args.response_repeats} is below the minimum of 0")
    started = time.perf_counter()
    kb = load_knowledge(args.knowledge_dir)
    data = load_customers(args.data)
    rep = data.report
    print(f"loaded {args.data}: {rep.rows_in} rows, kept {rep.rows_kept}; dropped "
          + ", ".join(f"{n} {why}" for why, n in rep.dropped.items()), file=sys.stderr)
    bundle, card = train(data, kb, k=k, seed=args.seed, n_boot=args.bootstrap, progress=_progress,
                         response_repeats=args.response_repeats)
    out = args.out or training_output_dir()
    if args.out is None and out != default_model_dir():
        print(f"no --out given and the package is installed: writing to {out}", file=sys.stderr)
    path = write_model(bundle, card, out)
    print(f"model written to {path.parent} ({card['k_reason']}; elbow at k={card['elbow']['k']}) "
          f"in {time.perf_counter() - started:.1f} s")
    for seg in card["segments"].values():
        print(f"  {seg['name']:<30} {seg['size']:>5} customers ({seg['share']:.0%})")
    return 0


def cmd_predict(args) -> int:
    from assistant.core.schemas import parse_profile

    profile = parse_profile({f.name: getattr(args, f.name) for f in FIELDS})
    service = _load_service(args)
    result = service.assign(profile)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print(f"{result.segment_name}: {result.summary}")
    print(result.confidence.text)
    print(f"\n{'':<28}{'customer':>14}{'segment avg':>14}")
    for row in result.comparison:
        f = next(f for f in FIELDS if f.name == row.field)
        print(f"{row.label:<28}{f.number(row.customer):>14}{f.number(row.segment_average):>14}")
    print("\nWhy:")
    for reason in result.reasons:
        print(f"  - {reason}")
    print(f"\nStrategy: {result.strategy.headline}")
    for tactic in result.strategy.tactics:
        print(f"  - {tactic}")
    print(f"Channels: {', '.join(result.strategy.channels)}\nKPI: {result.strategy.kpi}")
    for warning in result.warnings:
        print(f"Warning: {warning}")
    return 0


def cmd_segments(args) -> int:
    service = _load_service(args)
    segments = service.segments()
    if args.json:
        print(json.dumps([s.model_dump() for s in segments], indent=2))
        return 0
    for s in segments:
        print(f"{s.name} ({s.key}): {s.size} customers, {s.share:.0%}")
        print(f"  {s.summary}")
        print("  averages: " + ", ".join(f"{f.short_lower} {f.say(s.averages[f.name])}" for f in FIELDS))
        print(f"  strategy: {s.strategy.headline}\n")
    return 0


def cmd_model_card(args) -> int:
    from assistant.core.paths import default_model_dir
    from assistant.model.segmentation import read_card

    print(json.dumps(read_card(args.model_dir or default_model_dir()), indent=1))
    return 0


def cmd_chat(args) -> int:
    from assistant.adapters.terminal import run_chat

    return run_chat(_load_service(args), json_mode=args.json, stdin=sys.stdin, stdout=sys.stdout)


def cmd_serve(args) -> int:
    from assistant.adapters.web import run_server
    from assistant.core.settings import Settings, resolve_auth

    auth = resolve_auth(auth=args.auth, auth_file=args.auth_file)
    if args.share and not auth and not args.share_without_auth:
        raise AssistantError("--share would open a public link without a password: add --auth USER:PASS "
                             "(or --auth-file / $SEGMENT_ASSISTANT_AUTH), or pass --share-without-auth")
    settings = Settings(model_dir=args.model_dir, knowledge_dir=args.knowledge_dir, host=args.host, port=args.port,
                        share=args.share, share_without_auth=args.share_without_auth, auth=auth,
                        root_path=args.root_path.rstrip("/"), allow_origins=tuple(args.allow_origin),
                        frame_ancestors=tuple(args.allow_origin),
                        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024))
    return run_server(settings, service=_load_service(args))


def cmd_score(args) -> int:
    from assistant.adapters.score_command import run_score

    return run_score(args, service=_load_service(args))


def cmd_report(args) -> int:
    from assistant.adapters.report import run_report

    return run_report(args, service=_load_service(args))


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "segments": cmd_segments, "model-card": cmd_model_card,
            "chat": cmd_chat, "serve": cmd_serve, "score": cmd_score, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AssistantError as exc:
        print(f"segment-assistant {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"segment-assistant {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
