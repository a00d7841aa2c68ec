"""The portal's front door: home page with the four modules, health check."""
