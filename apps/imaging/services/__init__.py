"""Imaging services: staging uploads, ingesting them, and enhancement jobs. Views, commands and tasks call these."""
