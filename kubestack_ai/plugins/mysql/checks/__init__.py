"""The MySQL plugin's category checks, one mixin per category."""
