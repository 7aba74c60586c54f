"""The pages in a real browser: Debian's Chromium driven by Playwright against a live server.

Each role signs in with its key and does its daily work; the tests also write the screenshots the
README shows (docs/screenshots/, Chinese and English, 1366x768 and a tablet). A missing browser
fails these tests: CI installs it (`.ci/run`), nothing here skips.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api_helpers import E_FOOD_WUCHANG, E_WIRE_JIANGAN, E_WIRE_WUCHANG
from tests.ui_helpers import E_HOSTILE, HOSTILE_NAME, UiWorld, live_server, make_ui_world, override_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 768}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> UiWorld:
    return make_ui_world(tmp_path_factory.mktemp("ui-browser"))


@pytest.fixture(scope="module")
def base_url(world: UiWorld) -> Iterator[str]:
    with live_server(world) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, accept_downloads=True)
    p = context.new_page()
    p.set_default_timeout(10_000)
    yield p
    context.close()


def sign_in(page: Page, world: UiWorld, role: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("访问密钥").fill(world.tokens[role])
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def to_english(page: Page) -> None:
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()


def test_a_page_without_a_session_leads_to_the_sign_in_form_and_back(page: Page, world: UiWorld) -> None:
    page.goto(f"/ui/enterprises/{E_WIRE_WUCHANG}")
    assert "/ui/login" in page.url
    shot(page, "login-zh")
    page.get_by_label("访问密钥").fill(world.tokens["inspector"])
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(rf"/ui/enterprises/{E_WIRE_WUCHANG}$"))


def test_a_wrong_key_is_refused_with_a_message(page: Page) -> None:
    page.goto("/ui/login")
    page.get_by_label("访问密钥").fill("rk_00000000_" + "x" * 43)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("密钥无效")


def test_an_inspector_filters_the_plan_downloads_it_and_opens_an_enterprise(page: Page, world: UiWorld,
                                                                             tmp_path: Path) -> None:
    sign_in(page, world, "inspector")
    expect(page).to_have_url(re.compile(r"/ui/plan$"))
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(3)  # the inspector's district only (Wuchang), not Jiang'an's rows
    expect(page.get_by_text(E_WIRE_JIANGAN)).to_have_count(0)
    shot(page, "plan-zh")
    page.get_by_label("等级").select_option("C")
    page.get_by_role("button", name="筛选").click()
    expect(rows).to_have_count(2)
    for cell in page.locator("table.data tbody .grade").all_inner_texts():
        assert cell.startswith("C")
    with page.expect_download() as info:
        page.get_by_role("link", name="下载 Excel").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[1]
    ids = [sheet.cell(r, 3).value for r in range(2, sheet.max_row + 1)]
    assert sorted(ids) == sorted([E_HOSTILE, E_WIRE_WUCHANG])
    page.goto(f"/ui/enterprises/{E_WIRE_WUCHANG}")
    expect(page.get_by_role("heading", name="检查与处罚")).to_be_visible()
    expect(page.locator("ol.timeline li")).to_have_count(3)  # two inspections and a penalty
    expect(page.locator("svg.chart").first).to_be_visible()
    shot(page, "enterprise-zh", full_page=True)
    to_english(page)
    expect(page.get_by_role("heading", name="Inspections and penalties")).to_be_visible()
    shot(page, "enterprise-en", full_page=True)
    page.goto("/ui/plan")
    expect(page.get_by_role("button", name="Filter")).to_be_visible()  # the language is remembered
    shot(page, "plan-en")


def test_an_inspector_acknowledges_a_warning_of_their_district(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "inspector")
    page.get_by_role("link", name="预警").click()
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(2)  # Wuchang's two; Jiang'an's is another inspector's
    expect(page.get_by_text(HOSTILE_NAME)).to_be_visible()  # the hostile text, shown as text
    shot(page, "warnings-zh")
    row = rows.filter(has_text="生产许可证将于30日内到期")
    row.get_by_label("采取的措施").fill("已通知企业办理延续")
    row.get_by_role("button", name="确认处理").click()
    expect(rows).to_have_count(1)
    acknowledged = world.store.stored_warnings(enterprise_id=E_WIRE_WUCHANG).row(0, named=True)
    assert acknowledged["action"] == "已通知企业办理延续"
    assert acknowledged["acknowledged_by"].startswith(world.key_ids["inspector"])


def test_the_credit_office_reads_the_monitoring_report(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "credit_office")
    page.get_by_role("link", name="监测报告").click()
    expect(page.get_by_role("heading", name="告警")).to_be_visible()
    expect(page.get_by_text("D below C")).to_be_visible()
    expect(page.locator("table.data tbody tr")).to_have_count(3)
    shot(page, "monitoring-zh", full_page=True)
    to_english(page)
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    shot(page, "monitoring-en", full_page=True)


def test_the_plan_is_usable_on_a_tablet(browser: Browser, base_url: str, world: UiWorld) -> None:
    context = browser.new_context(base_url=base_url, viewport=TABLET)
    page = context.new_page()
    sign_in(page, world, "inspector")
    expect(page.get_by_role("button", name="筛选")).to_be_in_viewport()
    shot(page, "plan-tablet-zh")
    context.close()


def test_hostile_data_is_shown_as_text_and_never_run(page: Page, world: UiWorld) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, world, "inspector")
    expect(page.get_by_text(HOSTILE_NAME)).to_be_visible()
    page.goto(f"/ui/enterprises/{E_HOSTILE}")
    expect(page.get_by_role("heading", name=HOSTILE_NAME)).to_be_visible()
    expect(page.locator("ol.reasons li").first).to_have_text("<b>近365天检查不合格1次</b>")
    assert page.locator("main script").count() == 0
    page.get_by_role("link", name="查看完整解释").click()  # the explanation, with the record behind it
    expect(page.locator("ul.evidence li")).to_contain_text("2025-03-10")
    expect(page.locator("ul.evidence li")).to_contain_text("I4")
    shot(page, "explanation-evidence-zh", full_page=True)
    assert dialogs == []


def test_the_credit_office_searches_records_and_withdraws_an_override(page: Page, world: UiWorld) -> None:
    page.on("dialog", lambda d: d.accept())
    sign_in(page, world, "credit_office")
    page.get_by_role("link", name="企业查询").click()
    page.get_by_label("统一社会信用代码或企业名称").fill(E_FOOD_WUCHANG[:12])
    page.get_by_role("button", name="查询").click()
    page.get_by_role("link", name="武汉测试企业2").click()
    expect(page).to_have_url(re.compile(rf"/ui/enterprises/{E_FOOD_WUCHANG}$"))
    page.get_by_label("调整为").select_option("B")
    page.get_by_label("理由（必填）").fill("整改到位，现场复查合格")
    page.get_by_label("有效至").fill(override_until())
    page.get_by_role("button", name="记录调整").click()
    expect(page.locator(".big .grade")).to_contain_text("B")
    expect(page.get_by_text("整改到位，现场复查合格").first).to_be_visible()
    shot(page, "override-zh", full_page=True)
    page.get_by_label("撤销理由").fill("复查结论有误")
    page.get_by_role("button", name="撤销").click()
    expect(page.locator(".big .grade")).to_contain_text("D")
    expect(page.get_by_text("已撤销")).to_be_visible()
    page.get_by_role("link", name="查看完整解释").click()
    expect(page.get_by_role("heading", name=re.compile("等级解释"))).to_be_visible()
    shot(page, "explanation-zh", full_page=True)
    to_english(page)
    shot(page, "explanation-en", full_page=True)
    overrides = world.store.overrides(E_FOOD_WUCHANG)
    assert [(o.grade, o.withdrawn, o.withdraw_reason) for o in overrides] == [("B", True, "复查结论有误")]


def test_the_credit_office_takes_an_objection_through_its_steps(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "credit_office")
    expect(page).to_have_url(re.compile(r"/ui/cases$"))  # the queue is the credit office's start page
    page.goto(f"/ui/enterprises/{E_WIRE_WUCHANG}")
    page.get_by_text("登记异议或信用修复申请").click()
    page.get_by_label("企业陈述").fill("企业认为抽检不合格记录有误")
    page.get_by_role("button", name="登记", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/cases/OBJ-"))
    case_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".meta strong").first).to_have_text("已收件")
    page.get_by_label("理由（必填）").fill("材料齐全，予以受理")
    page.get_by_role("button", name="受理", exact=True).click()
    expect(page.locator(".meta strong").first).to_have_text("已受理")
    shot(page, "case-zh", full_page=True)
    page.get_by_label("理由（必填）").fill("经核查原检验报告无误")
    page.get_by_role("button", name="异议不成立").click()
    expect(page.locator(".meta strong").first).to_have_text("异议不成立")
    expect(page.locator("table.data tbody tr")).to_have_count(3)  # received, accepted, rejected
    page.get_by_role("link", name="案件").click()
    expect(page.get_by_role("link", name=case_id)).to_be_visible()
    shot(page, "cases-zh")
    to_english(page)
    shot(page, "cases-en")
    steps = world.store.audit().filter(pl.col("resource") == f"case:{case_id}")["action"].to_list()
    assert steps == ["cases.open", "cases.accept", "cases.reject"]


def test_a_sector_partner_sees_its_sector_by_grade_and_nothing_more(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "sector")
    expect(page).to_have_url(re.compile(r"/ui/sector$"))
    expect(page.locator("table.data").nth(1).locator("tbody tr")).to_have_count(3)  # wire_cable only
    expect(page.get_by_text(E_FOOD_WUCHANG)).to_have_count(0)
    expect(page.get_by_role("link", name="检查计划")).to_have_count(0)
    shot(page, "sector-zh")
    page.goto("/ui/plan")
    expect(page.get_by_role("alert")).to_contain_text("无权")
    page.goto(f"/ui/enterprises/{E_FOOD_WUCHANG}")  # another sector's enterprise: as if unknown
    expect(page.get_by_role("alert")).to_contain_text("未找到")


def test_a_forged_post_without_the_csrf_token_is_refused(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "credit_office")
    before = len(world.store.overrides(E_WIRE_WUCHANG))
    answer = page.request.post(f"/ui/enterprises/{E_WIRE_WUCHANG}/override",
                               form={"grade": "A", "reason": "forged", "expires_on": override_until()})
    assert answer.status == 403
    assert len(world.store.overrides(E_WIRE_WUCHANG)) == before


def test_signing_out_kills_the_session_cookie(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "inspector")
    cookie = next(c for c in page.context.cookies() if c["name"] == "rk_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.context.add_cookies([cookie])  # replay the old cookie
    page.goto("/ui/plan")
    expect(page).to_have_url(re.compile(r"/ui/login"))


def test_page_views_and_actions_are_in_the_audit_log(page: Page, world: UiWorld) -> None:
    sign_in(page, world, "inspector")
    page.goto(f"/ui/enterprises/{E_WIRE_WUCHANG}")
    page.get_by_role("button", name="退出").click()
    page.wait_for_timeout(600)  # the audit writer flushes every 0.2 s
    audit = world.store.audit().filter(pl.col("key_id") == world.key_ids["inspector"])
    actions = audit["action"].to_list()
    for wanted in ("ui_login", "ui_plan", "ui_enterprise", "ui_logout"):
        assert wanted in actions
    views = audit.filter(pl.col("action") == "ui_enterprise")
    assert views["resource"].to_list()[-1] == f"/ui/enterprises/{E_WIRE_WUCHANG}"
    assert set(views["role"].to_list()) == {"inspector"}
