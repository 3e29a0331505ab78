"""The plugin protocol (protocol.md): the server the host starts, and the host-side client."""
