"""Host tools for codex: ``mcp-host`` relays codex's MCP stdio to the plugin over a unix socket.

codex is given the agent's MCP server inline (``mcp_servers.<name>.*``, per exec run or per
app-server thread) and starts it: a small stdlib-only relay (the ``mcp`` SDK alone takes about
0.9 s to import, paid on every start); the long-lived plugin serves MCP with the SDK on the socket
and asks the host for each call.
"""
