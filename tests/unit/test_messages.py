"""What the agent hears: the message rule (pure), its record across failed and cancelled turns on
the fake codex seam, and the validation of messages and images."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, InvalidRequestError
from plexum_openai_provider._turn.delivery import DELIVERY_FILE, load_delivery
from plexum_openai_provider._turn.messages import (
    CONTINUE,
    HISTORY_MAX_MESSAGES,
    message_digest,
    plan_turn,
)
from plexum_openai_provider._turn.records import records_dir
from plexum_openai_provider.conversation import MAX_IMAGES, ChatMessage, ImagePart, parse_messages
from plexum_openai_provider.requests import TurnRequest
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on, wait_until

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def conversation(*messages: dict[str, Any]) -> tuple[ChatMessage, ...]:
    return parse_messages(list(messages))


def user(text: str, name: str | None = None) -> dict[str, Any]:
    return {"role": "user", "content": text, **({"name": name} if name else {})}


def test_instructions_input_speakers_and_history() -> None:
    messages = conversation(
        {"role": "system", "content": "You are Ada, the helper of #ops."},
        user("FIRST"),
        {"role": "assistant", "content": "First answer."},
        {"role": "developer", "content": "Answer briefly."},
        user("ALICE-MSG", "alice"),
        user("BOB-MSG", "bob"),
    )
    plan = plan_turn(messages, None, None)
    assert plan.instructions == "You are Ada, the helper of #ops.\n\nAnswer briefly."
    assert plan.fresh.text == "alice: ALICE-MSG\n\nbob: BOB-MSG" and plan.fresh.messages == 2
    assert plan.resumed == plan.fresh  # no record: nothing was delivered
    assert [(e.role, e.text) for e in plan.history] == [
        ("user", "FIRST"),
        ("assistant", "First answer."),
    ]
    assert plan.instructions_changed  # the thread has not had them


def test_a_message_codex_took_is_not_given_again() -> None:
    messages = conversation(user("Q1"), {"role": "assistant", "content": "A1"}, user("Q2"))
    plan = plan_turn(messages, None, THREAD)
    # The turn that took Q2 failed before it answered (open); the host sends the same again.
    record = plan.record(THREAD, open_=True)
    again = plan_turn(messages, record, THREAD)
    assert again.resumed.text == CONTINUE and again.resumed.messages == 0
    assert not again.instructions_changed
    # ... and with one more message since: only that one.
    more = conversation(user("Q1"), {"role": "assistant", "content": "A1"}, user("Q2"), user("Q3"))
    assert plan_turn(more, record, THREAD).resumed.text == "Q3"
    # A new thread (the recorded one is gone) is given the whole segment, and the history.
    assert plan_turn(more, record, THREAD).fresh.text == "Q2\n\nQ3"
    # Answered (closed), or another thread's record, or another segment: nothing is left out.
    assert plan_turn(messages, record.closed(), THREAD).resumed.text == "Q2"
    assert plan_turn(messages, record, "01a20aa9-1f0f-7e20-a261-459ebb6374ca").resumed.text == "Q2"
    later = conversation(*[user("Q2"), {"role": "assistant", "content": "A2"}, user("Q2")])
    assert plan_turn(later, record, THREAD).resumed.text == "Q2"


def test_instructions_changed_and_removed() -> None:
    first = conversation({"role": "system", "content": "Be Ada."}, user("hi"))
    plan = plan_turn(first, None, THREAD)
    record = plan.record(THREAD, open_=False)
    same = conversation({"role": "system", "content": "Be Ada."}, user("again"))
    assert plan_turn(same, record, THREAD).instructions_update is None
    changed = conversation({"role": "system", "content": "Be Bob."}, user("again"))
    update = plan_turn(changed, record, THREAD).instructions_update
    assert update is not None and update.endswith("\n\nBe Bob.")
    gone = plan_turn(conversation(user("again")), record, THREAD)
    assert gone.instructions_update == "The agent's earlier instructions no longer apply."
    assert plan_turn(conversation(user("x")), None, THREAD).instructions_update is None


def test_history_is_the_newest_messages_within_the_bound() -> None:
    earlier = []
    for n in range(HISTORY_MAX_MESSAGES + 20):
        earlier += [user(f"q{n}"), {"role": "assistant", "content": f"a{n}"}]
    plan = plan_turn(conversation(*earlier, user("now")), None, None)
    assert len(plan.history) == HISTORY_MAX_MESSAGES
    assert plan.history[-1].text == f"a{HISTORY_MAX_MESSAGES + 19}"


def test_nothing_to_answer_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as err:
        plan_turn(conversation(user("q"), {"role": "assistant", "content": "a"}), None, None)
    assert err.value.field == "messages"
    with pytest.raises(InvalidRequestError):
        plan_turn(conversation({"role": "system", "content": "only instructions"}), None, None)


def test_an_image_part_goes_with_its_message(tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    data = "data:image/png;base64," + base64.b64encode(PNG).decode()
    messages = conversation(
        {
            "role": "user",
            "name": "alice",
            "content": [{"type": "text", "text": "look"}, {"type": "image", "path": str(picture)}],
        },
        {"role": "user", "content": [{"type": "image", "url": data}]},
    )
    plan = plan_turn(messages, None, None)
    assert plan.fresh.text == "alice: look\n\n[image]"
    assert plan.fresh.images == (ImagePart(picture, None), ImagePart(None, data))
    assert message_digest(messages[0]) != message_digest(messages[1])


@pytest.mark.parametrize(
    ("content", "field", "why"),
    [
        ([{"type": "audio", "data": "x"}], "messages[0].content[0].type", "not known"),
        ([{"type": "image", "path": "relative.png"}], "messages[0].content[0]", "absolute"),
        ([{"type": "image", "path": "/nope/x.png"}], "messages[0].content[0]", "cannot be read"),
        ([{"type": "image", "path": "TEXT"}], "messages[0].content[0]", "not an image"),
        (
            [{"type": "image", "url": "data:image/png;base64,!!!"}],
            "messages[0].content[0]",
            "base64",
        ),
        ([{"type": "image", "url": "ftp://x/y.png"}], "messages[0].content[0]", "data: URL"),
        ([{"type": "image"}], "messages[0].content[0]", "path or a string url"),
        ([{"type": "text"}], "messages[0].content[0].text", "string text"),
    ],
)
def test_bad_parts_are_refused_naming_the_part(
    tmp_path: Path, content: list[dict[str, Any]], field: str, why: str
) -> None:
    text = tmp_path / "t.png"
    text.write_text("not an image")
    for part in content:
        if part.get("path") == "TEXT":
            part["path"] = str(text)
    with pytest.raises(InvalidRequestError) as err:
        request = TurnRequest(
            AgentContext("cx", tmp_path),
            messages=conversation({"role": "user", "content": content}),
        )
        request.validate()
    assert err.value.field == field and why in err.value.message


def test_bounds_on_images_roles_and_names(tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    many = [{"type": "image", "path": str(picture)}] * (MAX_IMAGES + 1)
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_IMAGES}"):
        TurnRequest(
            AgentContext("cx", tmp_path), messages=conversation({"role": "user", "content": many})
        ).validate()
    for bad, field in (
        ({"role": "tool", "content": "x"}, "messages[0].role"),
        ({"role": "user", "content": "x", "name": ""}, "messages[0].name"),
        ({"role": "user", "content": 5}, "messages[0].content"),
        (
            {"role": "assistant", "content": [{"type": "image", "path": str(picture)}]},
            "messages[0].content",
        ),
    ):
        with pytest.raises(InvalidRequestError) as err:
            parse_messages([bad])
        assert err.value.field == field


class Rig:
    """A provider on the fake seam, and the messages a host would send."""

    def __init__(self, tmp_path: Path, runs: list[FakeRun]) -> None:
        self.workspace = tmp_path / "ws"
        self.workspace.mkdir()
        self.records = records_dir(tmp_path / "state", self.workspace)
        self.engine = FakeEngine(list(runs))
        self.provider = provider_on(self.engine, tmp_path)

    async def turn(self, *messages: dict[str, Any]) -> Any:
        turn = await self.provider.start_turn(
            TurnRequest(AgentContext("cx", self.workspace), messages=conversation(*messages))
        )
        return [e async for e in turn], await turn.result()


# codex took the input (turn.started), then failed; or it failed before it took anything.
TOOK_AND_FAILED = [
    exec_lines.thread_started(THREAD),
    exec_lines.turn_started(),
    exec_lines.turn_failed("boom"),
]
FAILED_BEFORE = [exec_lines.thread_started(THREAD), exec_lines.turn_failed("no model")]


async def test_a_failed_turn_s_messages_are_not_given_twice(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path,
        [
            FakeRun(TOOK_AND_FAILED),
            FakeRun(exec_lines.turn(THREAD, "answer")),
            FakeRun(exec_lines.turn(THREAD, "answer 2")),
        ],
    )
    sent = [user("A", "alice"), user("B", "bob")]
    _, first = await rig.turn(*sent)
    assert first.status == "failed"
    record = load_delivery(rig.records)
    assert record is not None and record.open and len(record.delivered) == 2
    _, second = await rig.turn(*sent)  # the host retries with the same conversation
    assert second.status == "completed"
    _, third = await rig.turn(*sent, {"role": "assistant", "content": "answer"}, user("C", "carol"))
    assert third.status == "completed"
    prompts = [spec.prompt for spec in rig.engine.specs]
    assert prompts == ["alice: A\n\nbob: B", CONTINUE, "carol: C"]
    assert [spec.resume for spec in rig.engine.specs] == [None, THREAD, THREAD]


async def test_a_turn_that_failed_before_codex_took_its_input_gives_it_again(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, [FakeRun(FAILED_BEFORE), FakeRun(exec_lines.turn(THREAD, "ok"))])
    await rig.turn(user("A"))
    await rig.turn(user("A"))
    assert [spec.prompt for spec in rig.engine.specs] == ["A", "A"]


async def test_a_cancelled_turn_s_messages_are_not_given_twice(tmp_path: Path) -> None:
    hanging = FakeRun([exec_lines.thread_started(THREAD), exec_lines.turn_started()], hang=True)
    rig = Rig(tmp_path, [hanging, FakeRun(exec_lines.turn(THREAD, "ok"))])
    turn = await rig.provider.start_turn(
        TurnRequest(AgentContext("cx", rig.workspace), messages=conversation(user("A")))
    )
    await wait_until(lambda: load_delivery(rig.records) is not None)  # codex took it
    turn.cancel()
    assert (await turn.result()).status == "cancelled"
    await rig.turn(user("A"))
    assert [spec.prompt for spec in rig.engine.specs] == ["A", CONTINUE]


async def test_a_new_thread_is_given_the_instructions_and_the_history(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path, [FakeRun(exec_lines.turn(THREAD, "4711")), FakeRun(exec_lines.turn(THREAD, "ok"))]
    )
    events, _ = await rig.turn(
        {"role": "system", "content": "Be Ada."},
        user("the door code is 4711", "alice"),
        {"role": "assistant", "content": "Noted."},
        user("what is the door code?", "bob"),
    )
    spec = rig.engine.specs[0]
    assert spec.instructions == "Be Ada." and spec.instructions_update is None
    assert [(e.role, e.text) for e in spec.history] == [
        ("user", "alice: the door code is 4711"),
        ("assistant", "Noted."),
    ]
    assert [e.code for e in events if e.type == "notice"] == ["history_replayed"]
    # Resumed normally: no history again; the same instructions are not given again.
    events, _ = await rig.turn(
        {"role": "system", "content": "Be Ada."},
        user("the door code is 4711", "alice"),
        {"role": "assistant", "content": "Noted."},
        user("what is the door code?", "bob"),
        {"role": "assistant", "content": "4711"},
        user("thanks", "bob"),
    )
    resumed = rig.engine.specs[1]
    assert (
        resumed.resume == THREAD and resumed.history == () and resumed.instructions_update is None
    )
    assert resumed.prompt == "bob: thanks"
    assert not [e for e in events if e.type == "notice"]


def test_a_record_that_is_not_one_is_none(tmp_path: Path) -> None:
    # The older layout's record, moved in from the workspace, may be anything an agent wrote.
    (tmp_path / DELIVERY_FILE).write_text("{not json")
    assert load_delivery(tmp_path) is None
    (tmp_path / DELIVERY_FILE).write_text('{"thread_id": 1}')
    assert load_delivery(tmp_path) is None
