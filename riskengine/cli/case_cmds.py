"""``riskengine cases open|step|list|show|documents|overview``: the credit office's case work
(CONTRACT section 5). Each command parses, calls ``riskengine.workflows.cases`` and prints."""

from __future__ import annotations

import getpass
import json
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from riskengine.cli import app
from riskengine.cli.options import parse_day
from riskengine.core.config import Settings, get_settings
from riskengine.core.errors import UsageError
from riskengine.workflows import cases

cases_app = typer.Typer(help="Objections (异议) and credit repairs (信用修复): open, step, list, show.",
                        no_args_is_help=True)
app.add_typer(cases_app, name="cases")


class Kind(StrEnum):
    objection = "objection"
    repair = "repair"


class Format(StrEnum):
    text = "text"
    json = "json"


def _officer(name: str | None) -> str:
    if name:
        return name
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _day(value: str | None, option: str) -> date | None:
    return None if value is None else parse_day(value, option)


def _settings() -> Settings:
    return get_settings()


def _lake(lake: Path) -> Path:
    if not (lake / "enterprises").is_dir():
        raise UsageError(f"--lake {lake}: not a lake (no enterprises/ table); run `riskengine ingest` first")
    return lake


def _print_case(view: dict[str, Any], fmt: Format, *, id_last: bool = False) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    late = " — OVERDUE 已逾期" if view["overdue"] else ""
    clock = f"due {view['due_on']}{late}" if view["due_on"] else ""
    typer.echo(f"{view['case_id']}  {view['kind']}  {view['enterprise_id']}  status {view['status']}  "
               f"received {view['received_on']}  {clock}".rstrip())
    if view.get("subject"):
        typer.echo(f"  subject: {view['subject']}")
    for d in view.get("documents") or []:
        typer.echo(f"  document {d['code']} ({d['name_zh']}): {d['state']}")
    if view.get("eligibility"):
        e = view["eligibility"]
        failed = [k for k, c in e["checks"].items() if not c["ok"]]
        typer.echo(f"  eligible as of {e['as_of']}: {'yes 符合' if e['eligible'] else 'no 不符合'}"
                   + (f" ({', '.join(failed)})" if failed else ""))
    for s in view.get("steps") or []:
        typer.echo(f"  {s['on']}  {s['step']:<7} {s['status_after']:<9} {s['officer']}: {s['reason']}")
    if view["next_steps"]:
        typer.echo(f"  next: {' or '.join(view['next_steps'])}")
    if view.get("effect") == "pending":
        typer.echo("  the decision's records are being written (effect pending)")
    if id_last:
        typer.echo(view["case_id"])


@cases_app.command("open")
def open_case(
    kind: Annotated[Kind, typer.Argument(help="objection (异议) or repair (信用修复)")],
    enterprise_id: Annotated[str, typer.Argument(help="the enterprise's id")],
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    received_on: Annotated[str, typer.Option("--received-on", help="day the office received it")],
    record: Annotated[str | None, typer.Option(help="objection: the disputed record, TABLE:ID")] = None,
    grade: Annotated[bool, typer.Option("--grade", help="objection: the grade is disputed")] = False,
    statement: Annotated[str | None, typer.Option(help="the enterprise's statement")] = None,
    penalty: Annotated[str | None, typer.Option(help="repair: the penalty case id")] = None,
    list_entry: Annotated[str | None, typer.Option("--list-entry", help="repair: the list entry id")] = None,
    document: Annotated[list[str] | None, typer.Option(
        help="repair: a document received (rectification_proof, credit_pledge, fine_receipt)")] = None,
    officer: Annotated[str | None, typer.Option(help="who records it (default: the login)")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json on stdout")] = Format.text,
) -> None:
    """Open a case on an enterprise's behalf; prints it, its id on the last line."""
    settings, lake = _settings(), _lake(lake)
    received = _day(received_on, "--received-on")
    assert received is not None
    if kind is Kind.objection:
        if (record is None) == (not grade):
            raise UsageError("an objection names exactly one of --record TABLE:ID or --grade")
        if penalty or list_entry or document:
            raise UsageError("--penalty, --list-entry and --document belong to a repair")
        subject = None
        if record is not None:
            table, sep, rid = record.partition(":")
            if not sep or not table or not rid:
                raise UsageError(f"--record must be TABLE:ID, e.g. penalties:PEN-2024-00000042; "
                                 f"got {record!r}")
            subject = (table, rid)
        case = cases.open_objection(settings, lake, enterprise_id, received_on=received, record=subject,
                                    statement=statement or "", officer=_officer(officer))
    else:
        if record or grade:
            raise UsageError("--record and --grade belong to an objection")
        case = cases.open_repair(settings, lake, enterprise_id, received_on=received, penalty=penalty,
                                 list_entry=list_entry, documents=document or [], officer=_officer(officer),
                                 statement=statement)
    _print_case(cases.case_view(case, date.today()), fmt, id_last=fmt is Format.text)


@cases_app.command("step")
def step_case(
    case_id: Annotated[str, typer.Argument(help="the case id")],
    step: Annotated[str, typer.Argument(help="accept, refuse, uphold, reject, approve or deny")],
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    reason: Annotated[str, typer.Option(help="why (required for every step)")],
    on: Annotated[str | None, typer.Option(help="the day of the step (default today)")] = None,
    officer: Annotated[str | None, typer.Option(help="who takes it (default: the login)")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json on stdout")] = Format.text,
) -> None:
    """Take the case's next step; out of order or on a decided case: exit 1 naming its status."""
    settings, lake = _settings(), _lake(lake)
    case = cases.take_step(settings, lake, case_id, step, reason=reason, officer=_officer(officer),
                           on=_day(on, "--on"), regrader=cases.champion_regrader(settings))
    _print_case(cases.case_view(case, date.today()), fmt)


@cases_app.command("documents")
def receive(
    case_id: Annotated[str, typer.Argument(help="the repair case id")],
    codes: Annotated[list[str], typer.Argument(help="documents received")],
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    officer: Annotated[str | None, typer.Option(help="who records it")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.text,
) -> None:
    """Record documents of a repair application as received."""
    settings = _settings()
    case = cases.receive_documents(settings, _lake(lake), case_id, codes, _officer(officer))
    _print_case(cases.case_view(case, date.today()), fmt)


@cases_app.command("list")
def list_cases(
    overdue: Annotated[bool, typer.Option("--overdue", help="only cases past their due day")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="the day overdue is judged (default: today)")
                     ] = None,
    kind: Annotated[Kind | None, typer.Option(help="objection or repair")] = None,
    status: Annotated[str | None, typer.Option(help="received, accepted, refused, upheld, ...")] = None,
    district: Annotated[str | None, typer.Option(help="district code, e.g. 420106")] = None,
    lake: Annotated[Path | None, typer.Option(help="finish interrupted decisions in this lake first")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json on stdout")] = Format.text,
) -> None:
    """The case queue (oldest first), with each case's clock."""
    settings = _settings()
    today = _day(as_of, "--as-of") or date.today()
    if lake is not None:
        cases.complete_pending(settings, _lake(lake), cases.champion_regrader(settings))
    where = cases.CaseFilter(kind=kind.value if kind else None, status=status, overdue=overdue,
                             district=district)
    found = [cases.case_view(c, today) for c in cases.list_cases(settings, where, today)]
    if fmt is Format.json:
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        typer.echo("no cases 无案件")
    for v in found:
        late = "  OVERDUE 已逾期" if v["overdue"] else ""
        typer.echo(f"{v['case_id']}  {v['kind']:<9} {v['enterprise_id']}  {v['status']:<9} "
                   f"received {v['received_on']}  due {v['due_on'] or '-'}{late}")


@cases_app.command("show")
def show_case(
    case_id: Annotated[str, typer.Argument(help="the case id")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="the day overdue is judged")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json on stdout")] = Format.text,
) -> None:
    """One case with its clock, documents, eligibility and every step."""
    settings = _settings()
    today = _day(as_of, "--as-of") or date.today()
    _print_case(cases.case_view(cases.case_store(settings).get(case_id), today), fmt)


@cases_app.command("overview")
def overview(
    as_of: Annotated[str | None, typer.Option("--as-of", help="the day overdue is judged")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json on stdout")] = Format.text,
) -> None:
    """Open cases by kind and step, overdue cases, median days to decision."""
    settings = _settings()
    today = _day(as_of, "--as-of") or date.today()
    view = cases.overview(cases.list_cases(settings, cases.CaseFilter(), today), today)
    if fmt is Format.json:
        typer.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    for kind, steps in view["open"].items():
        typer.echo(f"{kind:<9} open: " + ", ".join(f"{k} {n}" for k, n in steps.items())
                   + f"; overdue {view['overdue_by_kind'][kind]}")
    typer.echo(f"decided {view['decided']}; median days to decision {view['median_days_to_decision']} "
               f"({view['median_working_days_to_decision']} working days)")


@cases_app.command("attention")
def attention(
    lake: Annotated[Path, typer.Option(help="the lake folder")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="the day to look ahead from")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, or json on stdout")] = Format.text,
) -> None:
    """Abnormal listings about to reach 3 years and commitments about to fall due (policy [cases])."""
    settings = _settings()
    today = _day(as_of, "--as-of") or date.today()
    items = cases.attention(_lake(lake), today, cases.deadlines(settings))
    if fmt is Format.json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    if not items:
        typer.echo("nothing due 无待办")
    for item in items:
        typer.echo(f"{item['due_on']}  {item['days_left']:>3} d  {item['enterprise_id']}  {item['rule']:<30} "
                   f"{item['text_zh']} / {item['text_en']}")
