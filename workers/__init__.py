"""workers: see DESIGN.md (filled by its issue)."""
