"""The pages' rules, checked over HTTP without a browser: sessions and their expiry, CSRF, scope,
the audit trail, language, number formatting, the Excel download."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from fastapi.testclient import TestClient

from api.deps import now as now_dependency
from api.main import create_app
from api.ui.render import number, one_language
from riskengine.core.store.sessions import SessionStore
from tests.api_helpers import E_FOOD_WUCHANG, E_WIRE_JIANGAN, E_WIRE_WUCHANG, NOBODY, make_service
from tests.ui_helpers import E_HOSTILE, HOSTILE_NAME, UiWorld, make_ui_world, override_until

T0 = datetime(2026, 3, 2, 9, 0)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def world(tmp_path: Path) -> UiWorld:
    return make_ui_world(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client_for(world: UiWorld, clock: Clock | None = None,
               base_url: str = "http://testserver") -> Iterator[TestClient]:
    app = create_app(service=make_service(world))
    if clock is not None:
        async def fixed() -> datetime:
            return clock()

        app.dependency_overrides[now_dependency] = fixed
    with TestClient(app, base_url=base_url) as c:
        yield c


@pytest.fixture
def client(world: UiWorld, clock: Clock) -> Iterator[TestClient]:
    yield from client_for(world, clock)


def csrf(client: TestClient) -> str:
    if "csrftoken" not in client.cookies:
        client.get("/ui/login")
    return str(client.cookies["csrftoken"])


def sign_in(client: TestClient, world: UiWorld, role: str) -> None:
    answer = client.post("/ui/login", data={"key": world.tokens[role], "csrftoken": csrf(client)},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text


def test_every_page_redirects_to_the_sign_in_form_without_a_session(client: TestClient) -> None:
    for path in ("/ui/", "/ui/plan", f"/ui/enterprises/{E_WIRE_WUCHANG}", "/ui/search", "/ui/sector",
                 "/ui/warnings", "/ui/monitoring", "/ui/plan.xlsx"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/login?next=")


def test_the_sign_in_form_has_one_labelled_key_field_and_a_csrf_token(client: TestClient) -> None:
    html = client.get("/ui/login").text
    assert re.findall(r'<input id="key" name="key" type="password"', html)
    assert '<label for="key">' in html
    assert 'name="csrftoken" value="' in html


def test_signing_in_makes_a_strict_httponly_session_cookie_and_a_stored_session(
        client: TestClient, world: UiWorld) -> None:
    answer = client.post("/ui/login", data={"key": world.tokens["inspector"], "csrftoken": csrf(client)},
                         follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("rk_session=")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/ui" in cookie
    assert "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    sessions = SessionStore(world.store).of_key(world.key_ids["inspector"])
    assert len(sessions) == 1 and token not in repr(sessions[0])  # only its hash is kept
    assert answer.headers["location"] == "/ui/plan"


def test_the_session_cookie_is_secure_when_configured(tmp_path: Path) -> None:
    world = make_ui_world(tmp_path, cookie_secure=True)
    for client in client_for(world, base_url="https://testserver"):  # Secure cookies travel over TLS only
        answer = client.post("/ui/login", data={"key": world.tokens["inspector"], "csrftoken": csrf(client)},
                             follow_redirects=False)
        assert "Secure" in answer.headers["set-cookie"]


def test_signing_in_without_the_csrf_token_is_refused(client: TestClient, world: UiWorld) -> None:
    fresh = client.post("/ui/login", data={"key": world.tokens["inspector"]}, follow_redirects=False)
    assert fresh.status_code == 403  # no cookies at all: still checked (login CSRF)
    csrf(client)
    answer = client.post("/ui/login", data={"key": world.tokens["inspector"], "csrftoken": "forged"},
                         follow_redirects=False)
    assert answer.status_code == 403
    assert SessionStore(world.store).of_key(world.key_ids["inspector"]) == []


def test_a_wrong_or_revoked_key_does_not_sign_in(client: TestClient, world: UiWorld) -> None:
    answer = client.post("/ui/login", data={"key": "rk_00000000_" + "a" * 43, "csrftoken": csrf(client)})
    assert answer.status_code == 401
    assert "密钥无效" in answer.text


def test_a_session_ends_after_the_idle_limit(client: TestClient, world: UiWorld, clock: Clock) -> None:
    sign_in(client, world, "inspector")
    clock.at = T0 + timedelta(minutes=29)
    assert client.get("/ui/plan", follow_redirects=False).status_code == 200
    clock.at += timedelta(minutes=30)  # idle 30 minutes since the last page
    assert client.get("/ui/plan", follow_redirects=False).status_code == 303
    (session,) = SessionStore(world.store).of_key(world.key_ids["inspector"])
    assert session.ended_why == "idle"


def test_a_session_ends_after_the_absolute_limit_however_busy(tmp_path: Path, clock: Clock) -> None:
    world = make_ui_world(tmp_path, session_hours=1.0)
    for client in client_for(world, clock):
        sign_in(client, world, "inspector")
        for _ in range(2):  # a page every 29 minutes: never idle
            clock.at += timedelta(minutes=29)
            assert client.get("/ui/", follow_redirects=False).status_code == 303  # to the plan
            assert client.get("/ui/plan", follow_redirects=False).status_code == 200
        clock.at += timedelta(minutes=2)  # an hour after sign-in
        assert client.get("/ui/plan", follow_redirects=False).status_code == 303
        (session,) = SessionStore(world.store).of_key(world.key_ids["inspector"])
        assert session.ended_why == "expired"


def test_revoking_the_key_ends_its_sessions(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "inspector")
    client.app.state.service.keys.revoke(world.key_ids["inspector"])  # type: ignore[attr-defined]
    assert client.get("/ui/plan", follow_redirects=False).status_code == 303


def test_after_sign_out_the_old_cookie_opens_nothing(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "credit_office")
    token = client.cookies["rk_session"]
    answer = client.post("/ui/logout", data={"csrftoken": csrf(client)}, follow_redirects=False)
    assert answer.status_code == 303 and 'rk_session=""' in answer.headers["set-cookie"]
    client.cookies.set("rk_session", token, path="/ui")
    assert client.get("/ui/search", follow_redirects=False).status_code == 303
    (session,) = SessionStore(world.store).of_key(world.key_ids["credit_office"])
    assert session.ended_why == "signed_out"


def test_sign_in_returns_only_to_a_local_page(client: TestClient, world: UiWorld) -> None:
    for target, expected in (("/ui/sector", "/ui/sector"), ("//evil.example/ui/", "/ui/plan"),
                             ("https://evil.example/", "/ui/plan"), ("/ui/logout", "/ui/plan")):
        client.cookies.clear()
        answer = client.post("/ui/login", data={"key": world.tokens["inspector"], "next": target,
                                                "csrftoken": csrf(client)}, follow_redirects=False)
        assert answer.headers["location"] == expected


def test_out_of_scope_and_unknown_enterprises_get_the_same_404_page(client: TestClient,
                                                                     world: UiWorld) -> None:
    sign_in(client, world, "inspector")  # Wuchang only
    other = client.get(f"/ui/enterprises/{E_WIRE_JIANGAN}")
    unknown = client.get(f"/ui/enterprises/{NOBODY}")
    assert other.status_code == unknown.status_code == 404
    assert other.text.replace(E_WIRE_JIANGAN, "ID") == unknown.text.replace(NOBODY, "ID")  # the path aside
    assert client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}").status_code == 200
    assert client.get("/ui/enterprises/not-a-uscc").status_code == 422


def test_a_sector_partner_has_no_plan_no_explanations_and_only_its_sector(client: TestClient,
                                                                          world: UiWorld) -> None:
    sign_in(client, world, "sector")  # wire_cable
    assert client.get("/ui/plan").status_code == 403
    assert client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}/explanation").status_code == 403
    assert client.get("/ui/sector?sector=food_related").status_code == 404
    html = client.get("/ui/sector").text
    assert E_WIRE_WUCHANG in html and E_FOOD_WUCHANG not in html
    grade_only = client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}").text
    assert "主要原因" not in grade_only and "风险分" in grade_only


def test_hostile_names_are_escaped(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "inspector")
    for path in ("/ui/plan", f"/ui/enterprises/{E_HOSTILE}", "/ui/warnings"):
        html = client.get(path).text
        assert HOSTILE_NAME not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_page_views_are_audited_like_api_reads(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "inspector")
    client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}")
    client.get(f"/ui/enterprises/{E_WIRE_JIANGAN}")  # out of scope: audited as a 404
    client.get("/ui/static/style.css")  # assets are not
    client.app.state.service.audit.flush()  # type: ignore[attr-defined]
    audit = world.store.audit().filter(pl.col("resource").str.starts_with("/ui/"))
    rows = audit.select("action", "resource", "status", "key_id", "role").rows()
    key = world.key_ids["inspector"]
    assert ("ui_login", "/ui/login", 303, key, "inspector") in rows
    assert ("ui_enterprise", f"/ui/enterprises/{E_WIRE_WUCHANG}", 200, key, "inspector") in rows
    assert ("ui_enterprise", f"/ui/enterprises/{E_WIRE_JIANGAN}", 404, key, "inspector") in rows
    assert not audit.filter(pl.col("resource").str.starts_with("/ui/static")).height


def test_pages_are_chinese_by_default_with_an_english_switch(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "inspector")
    zh = client.get("/ui/plan", headers={"Accept-Language": "en-US"})
    assert zh.headers["content-language"] == "zh" and "检查计划" in zh.text
    assert 'href="/ui/lang/en?next=/ui/plan"' in zh.text
    switched = client.get("/ui/lang/en?next=/ui/plan", follow_redirects=False)
    assert switched.headers["location"] == "/ui/plan"
    en = client.get("/ui/plan")
    assert en.headers["content-language"] == "en" and "Inspection plan" in en.text
    assert client.get("/ui/lang/en?next=https://evil.example/", follow_redirects=False
                      ).headers["location"] == "/ui/"


def test_numbers_read_the_chinese_way_and_in_english_with_separators() -> None:
    assert number(1234567, "zh") == "123.46万"
    assert number(250_000_000, "zh") == "2.50亿"
    assert number(9876, "zh") == "9,876"
    assert number(1234567, "en") == "1,234,567"
    assert number(None, "zh") == "—"


def test_the_plan_filters_and_its_excel_holds_exactly_the_rows_shown(client: TestClient,
                                                                      world: UiWorld) -> None:
    sign_in(client, world, "credit_office")
    page = client.get("/ui/plan?stratum=random&status=scheduled").text
    shown = re.findall(r'<small class="id">(\w{18})</small>', page)
    assert E_FOOD_WUCHANG not in shown  # mandatory
    answer = client.get("/ui/plan.xlsx?stratum=random&status=scheduled")
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    ids = [row[2] for ws in book.worksheets[1:] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert sorted(ids) == sorted(shown)
    assert book.worksheets[1].cell(1, 3).value == "统一社会信用代码 USCC"


def test_an_inspector_cannot_override_and_the_credit_office_needs_a_reason(client: TestClient,
                                                                           world: UiWorld) -> None:
    sign_in(client, world, "inspector")
    form = {"grade": "A", "reason": "x", "expires_on": override_until(), "csrftoken": csrf(client)}
    assert client.post(f"/ui/enterprises/{E_WIRE_WUCHANG}/override", data=form).status_code == 403
    client.cookies.clear()
    sign_in(client, world, "credit_office")
    refused = client.post(f"/ui/enterprises/{E_WIRE_WUCHANG}/override",
                          data={**form, "reason": "  ", "csrftoken": csrf(client)})
    assert refused.status_code == 422 and "reason" in refused.text
    assert world.store.overrides(E_WIRE_WUCHANG) == []


def test_the_api_is_not_subject_to_the_pages_csrf_check(client: TestClient, world: UiWorld) -> None:
    cookie = {"Cookie": "csrftoken=whatever; rk_session=whatever"}
    body = {"grade": "B", "reason": "api", "expires_on": override_until()}
    path = f"/v1/enterprises/{E_WIRE_WUCHANG}/override"
    unauthenticated = client.post(path, json=body, headers=cookie)
    assert unauthenticated.status_code == 401  # the API's own answer, not the pages' CSRF refusal
    answer = client.post(path, json=body, headers={**cookie, **world.headers("credit_office")})
    assert answer.status_code == 201


def test_a_form_larger_than_the_limit_is_refused_before_it_is_read(client: TestClient,
                                                                   world: UiWorld) -> None:
    answer = client.post("/ui/login", data={"key": "x" * 70_000, "csrftoken": csrf(client)})
    assert answer.status_code == 413
    assert client.post("/ui/login", data={"key": world.tokens["inspector"], "csrftoken": csrf(client)},
                       follow_redirects=False).status_code == 303


def test_the_case_queue_puts_overdue_cases_first_and_an_open_objection_shows_on_the_enterprise(
        client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "credit_office")
    token = csrf(client)
    opened = []
    for enterprise, received in ((E_WIRE_WUCHANG, "2026-03-02"), (E_FOOD_WUCHANG, "2026-02-02")):
        answer = client.post(f"/ui/enterprises/{enterprise}/cases", follow_redirects=False, data={
            "kind": "objection", "statement": "记录有误", "received_on": received, "csrftoken": token})
        assert answer.status_code == 303, answer.text
        opened.append(answer.headers["location"].rsplit("/", 1)[1])
    queue = client.get("/ui/cases").text
    order = re.findall(r'<a href="/ui/cases/([\w-]+)">', queue)
    assert order == [opened[1], opened[0]]  # received a month ago: overdue, so first
    assert "已超期" in queue
    assert "异议处理中" in client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}").text
    for step, reason in (("accept", "受理"), ("reject", "证据不足")):
        client.post(f"/ui/cases/{opened[0]}/step", data={"step": step, "reason": reason, "csrftoken": token})
    assert "异议处理中" not in client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}").text
    refused = client.post(f"/ui/cases/{opened[0]}/step", data={"step": "uphold", "reason": "x",
                                                             "csrftoken": token})
    assert refused.status_code == 409 and "rejected" in refused.text  # a decided case takes no step


def test_an_inspector_sees_that_a_case_exists_but_not_its_papers(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "credit_office")
    client.post(f"/ui/enterprises/{E_WIRE_WUCHANG}/cases", data={
        "kind": "objection", "statement": "机密陈述", "csrftoken": csrf(client)})
    client.cookies.clear()
    sign_in(client, world, "inspector")
    page = client.get(f"/ui/enterprises/{E_WIRE_WUCHANG}").text
    assert "OBJ-" in page and "机密陈述" not in page
    assert client.get("/ui/cases").status_code == 403


def _unlabelled_fields(html: str) -> list[str]:
    """Visible inputs and selects with neither a <label for=id> nor an enclosing <label>."""
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    bad = []
    for match in re.finditer(r'<(input|select)\b([^>]*)>', html):
        attrs = match.group(2)
        if 'type="hidden"' in attrs:
            continue
        field_id = re.search(r'\bid="([^"]+)"', attrs)
        enclosed = html.rfind("<label", 0, match.start()) > html.rfind("</label>", 0, match.start())
        if not enclosed and (field_id is None or field_id.group(1) not in labelled):
            bad.append(match.group(0))
    return bad


def test_every_page_has_an_english_switch_and_labels_on_every_field(client: TestClient,
                                                                    world: UiWorld) -> None:
    sign_in(client, world, "credit_office")
    client.post(f"/ui/enterprises/{E_WIRE_WUCHANG}/cases", data={
        "kind": "objection", "statement": "x", "csrftoken": csrf(client)})
    case_id = re.findall(r'/ui/cases/(OBJ-[\w-]+)', client.get("/ui/cases").text)[0]
    pages = ["/ui/plan", "/ui/search?q=武汉", f"/ui/enterprises/{E_WIRE_WUCHANG}",
             f"/ui/enterprises/{E_WIRE_WUCHANG}/explanation", "/ui/warnings", "/ui/monitoring",
             "/ui/sector", "/ui/cases", f"/ui/cases/{case_id}", "/ui/login"]
    for path in pages:
        html = client.get(path).text
        assert 'href="/ui/lang/en?next=' in html, path
        assert _unlabelled_fields(html) == [], path


def test_an_admin_signs_in_to_a_page_without_enterprise_data(client: TestClient, world: UiWorld) -> None:
    sign_in(client, world, "admin")
    home = client.get("/ui/")
    assert home.status_code == 200 and "没有可查看的企业数据页面" in home.text
    for path in ("/ui/plan", "/ui/search", f"/ui/enterprises/{E_WIRE_WUCHANG}", "/ui/cases", "/ui/warnings"):
        assert client.get(path).status_code == 403, path


def test_the_plan_page_shows_each_reason_and_why_in_the_pages_language_only(client: TestClient,
                                                                            world: UiWorld) -> None:
    sign_in(client, world, "credit_office")
    zh = client.get("/ui/plan").text
    assert "同类企业基准（电线电缆）" in zh and "列入严重违法失信名单" in zh
    assert "baseline of similar enterprises" not in zh and "on the dishonest list" not in zh
    client.get("/ui/lang/en?next=/ui/plan")
    en = client.get("/ui/plan").text
    assert "baseline of similar enterprises (wires and cables)" in en and "on the dishonest list" in en
    assert "同类企业基准" not in en and "列入严重违法失信名单" not in en


@pytest.mark.parametrize(("text", "zh", "en"), [
    ("近365天检查不合格（2次）（2 failed inspections）；同类企业基准（baseline）",
     "近365天检查不合格（2次）；同类企业基准", "2 failed inspections; baseline"),
    ("双随机抽取（C级） / random draw, stratum C", "双随机抽取（C级）", "random draw, stratum C"),
    ("plain text", "plain text", "plain text"),
    (None, "", ""),
])
def test_one_language_takes_the_pages_half_of_a_bilingual_text(text: str | None, zh: str, en: str) -> None:
    assert one_language(text, "zh") == zh
    assert one_language(text, "en") == en
