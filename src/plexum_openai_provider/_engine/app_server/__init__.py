"""The app-server engine: one persistent ``codex app-server`` serving every agent's thread.

Three modules, along the lines of what it holds: :mod:`.server` (the process and its
connection), :mod:`.threads` (the engine: the table of loaded threads, and a turn's start on
one) and :mod:`.run` (one turn of one thread, as the seam's run).

codex's app-server speaks JSON-RPC on its stdio (codex 0.163/0.169; ``codex app-server
generate-json-schema --experimental`` prints the schema). One process runs many threads' turns in
parallel; a thread, once loaded, answers its next turn in tens of milliseconds instead of the
quarter second a ``codex exec resume`` takes, and the answer streams as deltas.

What this package does, and why:

* **Start**: ``codex app-server -c thread_unload_delay_secs=0`` in its own process group
  (killing npm's node wrapper alone leaves the native server running), ``initialize`` with
  ``experimentalApi``, then ``initialized``. A handshake that fails or hangs is an
  :class:`AppServerError` (the provider then falls back to the exec engine).
* **Threads**: ``thread/start`` or ``thread/resume`` with the agent's workspace as ``cwd``,
  ``approvalPolicy: never``, the agent's sandbox (its permission profile, defined in ``config``
  and named by ``permissions``; or ``sandbox: danger-full-access`` when unconfined, like exec's
  ``--dangerously-bypass-approvals-and-sandbox``), its codex features and the host-tool MCP server
  inline in ``config``. A loaded thread ignores new config, so when a turn's MCP server (the
  tools) or policy differs the thread is unloaded and resumed with the new one; otherwise it stays
  loaded and the next turn goes straight to ``turn/start``.
* **Unload**: ``thread/unsubscribe``, then the ``thread/closed`` that follows (only with an unload
  delay of 0 does it follow at once). A loaded thread holds codex's writer lock and its history in
  memory, so a consume unloads it first (:meth:`release_thread`). Idle threads are unloaded after
  a while and the least recently used beyond a count, so memory stays bounded.
* **Turns**: notifications are routed to the run of their thread and mapped by
  :class:`~.app_server_events.AppServerTurn`. A stop is ``turn/interrupt`` (codex ends the turn
  in about 10 ms) followed by ``thread/backgroundTerminals/clean``: a shell child survives the
  interrupt otherwise.
* **Failure**: the app-server dying ends every running turn (``codex_exited``, with its exit code
  and stderr); the next turn starts a new one and resumes. A request unanswered within its bound
  means the server is wedged: it is killed, and replaced on the next turn.
"""

from .run import AppServerRun
from .threads import AppServerEngine

__all__ = ["AppServerEngine", "AppServerRun"]
