"""People, organisations and how they log in."""
