"""scheduler: see DESIGN.md (filled by its issue)."""
