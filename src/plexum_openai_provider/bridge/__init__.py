"""Host tools for codex: ``mcp-host`` relays codex's MCP stdio to the plugin over a unix socket.

codex starts ``mcp-host`` at the start of every run that enables the agent's server. The relay is a
small stdlib-only process (the ``mcp`` SDK alone takes about 0.9 s to import, paid on every turn);
the long-lived plugin serves MCP with the SDK on the socket and asks the host for each call.
"""
