"""The fake LINE API, driven by the real SDK clients (linebot.v3.messaging) over real HTTP.

Bodies the SDK's own models would refuse before sending (6 messages, 14 quick replies, 501
multicast users, a 15-character chatBarText) are posted raw through the SDK's ApiClient.call_api,
as a client that skips the models on a hot path would send them.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    MessagingApi,
    MessagingApiBlob,
    MulticastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    RichMenuRequest,
)

from tests.fake_line import FakeLine

ALICE, BOB = "U" + "a" * 32, "U" + "b" * 32


@pytest.fixture
def fake() -> Iterator[FakeLine]:
    with FakeLine() as fake:
        yield fake


@pytest.fixture
def client(fake: FakeLine) -> Iterator[ApiClient]:
    with ApiClient(fake.configuration()) as client:
        yield client


@pytest.fixture
def api(client: ApiClient) -> MessagingApi:
    return MessagingApi(client)


@pytest.fixture
def blob(client: ApiClient) -> MessagingApiBlob:
    return MessagingApiBlob(client)


def text(value: str = "hello") -> dict[str, Any]:
    return {"type": "text", "text": value}


def bubble(words: str = "Stamp card: 3/10") -> dict[str, Any]:
    return {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
        {"type": "text", "text": words, "wrap": True},
        {"type": "button", "action": {"type": "postback", "label": "Redeem", "data": "a=redeem"}},
    ]}}


def flex(contents: dict[str, Any], alt: str = "Your card") -> dict[str, Any]:
    return {"type": "flex", "altText": alt, "contents": contents}


def carousel(bubbles: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "carousel", "contents": bubbles}


def png(width: int, height: int, padding: int = 0) -> bytes:
    """A real (black) PNG; ``padding`` bytes of an ancillary chunk make it as large as needed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = (b"\x00" + b"\x00" * width * 3) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"zzZz", b"\x00" * padding)
            + chunk(b"IEND", b""))


def menu(areas: int = 2, width: int = 2500, height: int = 843, **extra: Any) -> dict[str, Any]:
    cell = width // areas
    return {"size": {"width": width, "height": height}, "selected": True, "name": "main",
            "chatBarText": "Menu", **extra, "areas": [
                {"bounds": {"x": i * cell, "y": 0, "width": cell, "height": height},
                 "action": {"type": "postback", "data": f"menu={i}"}} for i in range(areas)]}


def post_raw(client: ApiClient, path: str, body: Any, **headers: str) -> Any:
    """Send a JSON body the SDK's models would not build, through the SDK's HTTP stack."""
    return client.call_api(path, "POST", header_params={"Content-Type": "application/json",
                                                        **headers},
                           body=body, auth_settings=["Bearer"], response_types_map={})


def rejected(exc_info: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    assert exc_info.value.status == 400
    return json.loads(exc_info.value.body)


def test_a_flex_reply_is_accepted_and_recorded(fake: FakeLine, api: MessagingApi) -> None:
    token = fake.new_reply_token()
    request = ReplyMessageRequest.from_dict(
        {"replyToken": token, "messages": [flex(carousel([bubble(), bubble()])), text()]})
    response = api.reply_message(request)
    assert len(response.sent_messages) == 2
    assert fake.replies()[0]["messages"][0]["contents"]["type"] == "carousel"
    (call,) = fake.calls
    assert (call.method, call.path, call.status) == ("POST", "/v2/bot/message/reply", 200)
    assert call.headers["Authorization"] == f"Bearer {fake.access_token}"
    assert fake.rejections == []


def test_six_messages_are_rejected(fake: FakeLine, client: ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        post_raw(client, "/v2/bot/message/reply",
                 {"replyToken": fake.new_reply_token(), "messages": [text()] * 6})
    body = rejected(err)
    assert body["details"] == [{"message": "Size must be between 1 and 5", "property": "messages"}]
    assert body["message"] == "The request body has 1 error(s)"
    assert fake.replies() == [] and len(fake.rejections) == 1


@pytest.mark.parametrize(("message", "where"), [
    (flex(carousel([bubble()] * 13)), "messages[0].contents.contents"),
    (flex(bubble("x" * 31_000)), "messages[0].contents"),
    (flex(carousel([bubble("y" * 20_000)] * 3)), "messages[0].contents"),
    (text("z" * 5001), "messages[0].text"),
    (text("👍" * 2501), "messages[0].text"),  # 5002 UTF-16 units
    (flex(bubble(), alt="a" * 1501), "messages[0].altText"),
], ids=["13-bubbles", "bubble-over-30KB", "carousel-over-50KB", "text-5001", "emoji", "altText"])
def test_limits_the_sdk_does_not_check(api: MessagingApi, message: dict[str, Any],
                                       where: str) -> None:
    request = PushMessageRequest.from_dict({"to": ALICE, "messages": [message]})  # SDK: fine
    with pytest.raises(ApiException) as err:
        api.push_message(request)
    assert where in [d["property"] for d in rejected(err)["details"]]


@pytest.mark.parametrize(("message", "where"), [
    ({**text(), "quickReply": {"items": [{"type": "action", "action": {
        "type": "message", "label": "ok", "text": "ok"}}] * 14}}, "messages[0].quickReply.items"),
    (flex({**bubble(), "footer": {"type": "box", "layout": "vertical", "contents": [{
        "type": "button", "action": {"type": "postback", "label": "go", "data": "d" * 301}}]}}),
     "messages[0].contents.footer.contents[0].action.data"),
], ids=["14-quick-replies", "postback-data-301"])
def test_limits_the_sdk_models_also_check(fake: FakeLine, client: ApiClient,
                                          message: dict[str, Any], where: str) -> None:
    with pytest.raises(ApiException) as err:
        post_raw(client, "/v2/bot/message/push", {"to": ALICE, "messages": [message]})
    assert [d["property"] for d in rejected(err)["details"]] == [where]


def test_the_sdk_models_check_structure(client: ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        post_raw(client, "/v2/bot/message/push",
                 {"to": ALICE, "messages": [{"type": "flex", "altText": "x",
                                             "contents": {"type": "bubble", "body": {
                                                 "type": "box", "contents": []}}}]})
    assert "layout" in json.dumps(rejected(err)["details"])


def test_a_reply_token_is_single_use(fake: FakeLine, api: MessagingApi) -> None:
    for token in (fake.new_reply_token(), "a-token-the-fake-never-issued"):
        request = ReplyMessageRequest.from_dict({"replyToken": token, "messages": [text()]})
        api.reply_message(request)
        with pytest.raises(ApiException) as err:
            api.reply_message(request)
        assert rejected(err) == {"message": "Invalid reply token"}
    assert len(fake.replies()) == 2


def test_a_retry_key_is_not_allowed_on_reply(fake: FakeLine, api: MessagingApi) -> None:
    request = ReplyMessageRequest.from_dict({"replyToken": "t", "messages": [text()]})
    with pytest.raises(ApiException) as err:
        api.reply_message(request, _headers={"X-Line-Retry-Key": str(uuid.uuid4())})
    assert "Retry-Key" in rejected(err)["message"]


def test_a_reused_retry_key_gets_409_and_no_second_delivery(fake: FakeLine,
                                                           api: MessagingApi) -> None:
    request = PushMessageRequest.from_dict({"to": ALICE, "messages": [text("5 points")]})
    key = str(uuid.uuid4())
    first = api.push_message_with_http_info(request, x_line_retry_key=key)
    with pytest.raises(ApiException) as err:
        api.push_message(request, x_line_retry_key=key)
    assert err.value.status == 409
    assert err.value.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert fake.messages_to(ALICE) == [text("5 points")]
    with pytest.raises(ApiException) as err:
        api.push_message(request, x_line_retry_key="not-a-uuid")
    assert "X-Line-Retry-Key" in rejected(err)["message"]


def test_a_wrong_token_gets_401(fake: FakeLine) -> None:
    with (ApiClient(fake.configuration(access_token="wrong")) as client,
          pytest.raises(ApiException) as err):
        MessagingApi(client).get_bot_info()
    assert err.value.status == 401
    assert "Authentication failed" in json.loads(err.value.body)["message"]
    assert [c.status for c in fake.rejections] == [401]


def test_scripted_failures_then_success_deliver_once(fake: FakeLine, api: MessagingApi) -> None:
    fake.fail_next("/push", 500)
    fake.fail_next("/push", 429)
    request = PushMessageRequest.from_dict({"to": ALICE, "messages": [text()]})
    key, statuses = str(uuid.uuid4()), []
    for _ in range(3):
        try:
            api.push_message(request, x_line_retry_key=key)
            statuses.append(200)
        except ApiException as exc:
            statuses.append(exc.status)
    assert statuses == [500, 429, 200]
    assert len(fake.pushes()) == 1 and fake.rejections == []


def test_a_delayed_push_times_out_but_lands_and_its_retry_gets_409(fake: FakeLine,
                                                                 api: MessagingApi) -> None:
    fake.delay_next("/push", 0.5)
    request = PushMessageRequest.from_dict({"to": ALICE, "messages": [text()]})
    key = str(uuid.uuid4())
    with pytest.raises(Exception, match="(?i)timed? ?out"):
        api.push_message(request, x_line_retry_key=key, _request_timeout=0.1)
    fake.wait_for(fake.pushes)
    with pytest.raises(ApiException) as err:
        api.push_message(request, x_line_retry_key=key)
    assert err.value.status == 409 and len(fake.messages_to(ALICE)) == 1


def test_wait_for_sees_async_deliveries_and_gives_up(fake: FakeLine, api: MessagingApi) -> None:
    request = PushMessageRequest.from_dict({"to": BOB, "messages": [text("later")]})
    threading.Timer(0.1, api.push_message, args=(request,)).start()
    assert fake.wait_for(lambda: fake.messages_to(BOB)) == [text("later")]
    with pytest.raises(AssertionError, match="not met"):
        fake.wait_for(lambda: fake.messages_to(ALICE), timeout=0.1)


def test_multicast_limits_and_quota(fake: FakeLine, api: MessagingApi,
                                    client: ApiClient) -> None:
    fake.set_quota(3, used=0)
    api.multicast(MulticastRequest.from_dict({"to": [ALICE, BOB], "messages": [text()]}))
    assert fake.messages_to(ALICE) == fake.messages_to(BOB) == [text()]
    assert api.get_message_quota().to_dict() == {"type": "limited", "value": 3}
    assert api.get_message_quota_consumption().total_usage == 2
    with pytest.raises(ApiException) as err:
        api.multicast(MulticastRequest.from_dict({"to": [ALICE, BOB], "messages": [text()]}))
    assert err.value.status == 429
    with pytest.raises(ApiException) as err:
        post_raw(client, "/v2/bot/message/multicast",
                 {"to": [f"U{i:032x}" for i in range(501)], "messages": [text()]})
    assert rejected(err)["details"][0]["property"] == "to"
    with pytest.raises(ApiException) as err:
        api.push_message(PushMessageRequest.from_dict({"to": "member-42", "messages": [text()]}))
    assert rejected(err)["details"][0]["property"] == "to[0]"


def test_profiles_and_bot_info(fake: FakeLine, api: MessagingApi) -> None:
    fake.add_profile(ALICE, "Alice")
    profile = api.get_profile(ALICE)
    assert (profile.display_name, profile.language) == ("Alice", "zh-TW")
    with pytest.raises(ApiException) as err:
        api.get_profile(BOB)
    assert err.value.status == 404 and fake.rejections == []
    assert api.get_bot_info().display_name == "Fake Shop"


def test_a_rich_menu_life_cycle(fake: FakeLine, api: MessagingApi,
                                blob: MessagingApiBlob) -> None:
    menu_id = api.create_rich_menu(RichMenuRequest.from_dict(menu(6))).rich_menu_id
    assert menu_id.startswith("richmenu-")
    with pytest.raises(ApiException) as err:
        api.set_default_rich_menu(menu_id)
    assert "upload richmenu image" in rejected(err)["message"]
    image = png(2500, 843)
    blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": "image/png"})
    (upload,) = fake.calls_to("/content")
    assert upload.body == image and fake.rich_menu_images[menu_id] == image
    api.set_default_rich_menu(menu_id)
    assert api.get_default_rich_menu_id().rich_menu_id == menu_id
    api.link_rich_menu_id_to_user(ALICE, menu_id)
    assert api.get_rich_menu_id_of_user(ALICE).rich_menu_id == menu_id
    api.unlink_rich_menu_id_from_user(ALICE)
    assert [m.rich_menu_id for m in api.get_rich_menu_list().richmenus] == [menu_id]
    api.delete_rich_menu(menu_id)
    assert api.get_rich_menu_list().richmenus == [] and fake.default_rich_menu_id is None


@pytest.mark.parametrize(("body", "where"), [
    (menu(21), "areas"),
    (menu(2, width=2500, height=1800), "size"),
    (menu(2, width=700, height=400), "size.width"),
    ({**menu(1), "areas": [{"bounds": {"x": 2000, "y": 0, "width": 600, "height": 843},
                            "action": {"type": "message", "text": "hi"}}]}, "areas[0].bounds"),
    (menu(2, chatBarText="Tap here for more"), "chatBarText"),
], ids=["21-areas", "ratio", "narrow", "area-outside", "chatBarText-17"])
def test_rich_menu_objects_are_checked(fake: FakeLine, client: ApiClient, body: dict[str, Any],
                                       where: str) -> None:
    with pytest.raises(ApiException) as err:
        post_raw(client, "/v2/bot/richmenu", body)
    assert where in [d["property"] for d in rejected(err)["details"]]
    assert fake.rich_menus == {}


@pytest.mark.parametrize(("image", "kind", "error"), [
    (png(2500, 843, padding=2_000_000), "image/png", "exceeds"),
    (png(2500, 843), "image/jpeg", "not a image/jpeg"),
    (b"GIF89a" + b"\x00" * 100, "image/gif", "Content-Type"),
], ids=["2MB", "png-sent-as-jpeg", "gif"])
def test_rich_menu_images_are_checked(api: MessagingApi, blob: MessagingApiBlob, image: bytes,
                                      kind: str, error: str) -> None:
    menu_id = api.create_rich_menu(RichMenuRequest.from_dict(menu())).rich_menu_id
    with pytest.raises(ApiException) as err:
        blob.set_rich_menu_image(menu_id, image, _headers={"Content-Type": kind})
    assert error in rejected(err)["message"]


def test_reset_and_unknown_endpoints(fake: FakeLine, client: ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        post_raw(client, "/v2/bot/message/broadcast", {"messages": [text()]})
    assert err.value.status == 404 and len(fake.rejections) == 1
    fake.reset()
    assert fake.calls == [] and fake.rejections == []
    port, serving = int(fake.base_url.rsplit(":", 1)[1]), fake._thread
    fake.stop()  # the client's connection is still open; timed in benchmarks/fake_line.py
    assert serving is not None and not serving.is_alive()  # ended, not left behind by a timeout
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
