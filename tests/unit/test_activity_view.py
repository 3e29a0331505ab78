"""What ``chat`` draws of an agent at work, on a pipe (plain lines) and on a terminal (in place)."""

from __future__ import annotations

import io

from plexum_openai_provider.cli.activity_view import ActivityView
from plexum_openai_provider.events import (
    Plan,
    PlanStep,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolOutputDelta,
    ToolStarted,
)

STARTED = ToolStarted("c1", "exec_command", '{"cmd": "for i in 1 2 3; do echo step $i; done"}')


def test_a_pipe_gets_plain_lines() -> None:
    out = io.StringIO()
    view = ActivityView(out, tty=False)
    assert view.show(ReasoningDelta("r/0", "Counting first."))
    assert view.show(Plan((PlanStep("count", "in_progress"), PlanStep("report", "pending")), "why"))
    assert view.show(STARTED)
    assert view.show(ToolOutputDelta("c1", "step 1\n"))
    assert not view.show(ToolCall("c1", "exec_command", "{}"))
    assert not view.show(TextDelta("done"))
    assert out.getvalue() == (
        "  thinking: Counting first.\n"
        "  plan: why\n"
        "    [>] count\n"
        "    [ ] report\n"
        "  * running: for i in 1 2 3; do echo step $i; done\n"
    )


def test_a_terminal_gets_a_spinner_line_with_the_last_output_and_dim_reasoning() -> None:
    out = io.StringIO()
    view = ActivityView(out, tty=True)
    view.show(ReasoningDelta("r/0", "Counting."))
    view.show(STARTED)
    view.show(ToolOutputDelta("c1", "step 1\nstep 2\n"))
    text = out.getvalue()
    assert "\033[2m" in text and "Counting." in text and "\033[0m" in text  # dimmed
    assert text.endswith("\r\033[K  ⠋ running: for i in 1 2 3; do echo step $i; done  | step 2")
    view.show(ToolCall("c1", "exec_command", "{}"))
    assert out.getvalue().endswith("\r\033[K")  # the line is taken away when the call ends
    view.close()
