"""One module per category; each ``check(v: NodeView)`` judges one node."""
